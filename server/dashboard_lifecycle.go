package server

import (
	"fmt"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
)

// lifecycleTexts are the dashboard's words for retiring and revoking
// devices, in Swedish and English.
var lifecycleTexts = map[string][2]string{
	StateActive:       {"aktiv", "active"},
	StateRetired:      {"avvecklad", "retired"},
	StateLost:         {"spärrad: förlorad eller stulen", "revoked: lost or stolen"},
	"last_push":       {"Senast skickat", "Last push"},
	"last_pull":       {"Senast hämtat", "Last pull"},
	"mutations":       {"Mottagna ändringar", "Writes received"},
	"retire":          {"Avveckla", "Retire"},
	"revoke_lost":     {"Förlorad eller stulen", "Lost or stolen"},
	"cancel":          {"Avbryt", "Cancel"},
	"retire_question": {"Avveckla surfplattan?", "Retire the tablet?"},
	"revoke_question": {"Spärra surfplattan som förlorad eller stulen?", "Revoke the tablet as lost or stolen?"},
	"retire_confirm":  {"Ja, avveckla den", "Yes, retire it"},
	"revoke_confirm":  {"Ja, spärra den", "Yes, revoke it"},
	"retire_consequence": {
		"Surfplattan tas ur bruk. Den får fortfarande skicka de poster den har kvar men hämtar inget mer, och dess lokala data raderas när allt är skickat. Inga poster går förlorade. Är plattan förlorad eller stulen, spärra den i stället.",
		"The tablet is taken out of service. It may still send the records it holds but pulls nothing more, and its local data is wiped once everything is sent. No record is lost. If the tablet is lost or stolen, revoke it instead.",
	},
	"revoke_consequence": {
		"Servern tar inte längre emot något från surfplattan, inte ens poster den ännu inte har skickat, och dess lokala data raderas nästa gång den når servern: allt som registrerats efter den senaste sändningen går förlorat. Tas plattan bara ur bruk, avveckla den i stället.",
		"The server accepts nothing more from the tablet, not even records it has not sent yet, and its local data is wiped when it next reaches the server: whatever was recorded after its last push is lost. If the tablet is only taken out of service, retire it instead.",
	},
	"retire_refused": {"Surfplattan är spärrad som förlorad eller stulen och förblir spärrad.", "The tablet is revoked as lost or stolen and stays revoked."},
}

func init() {
	for k, v := range lifecycleTexts {
		texts[k] = v
	}
}

// lifecycleRow is what the device list shows of a device's lifecycle.
type lifecycleRow struct {
	State, LastPush, LastPull string
	Mutations                 int64
}

func lifecycleRowOf(d DeviceInfo, l schema.Lang) lifecycleRow {
	r := lifecycleRow{State: d.State, LastPush: text("never", l), LastPull: text("never", l), Mutations: d.Mutations}
	if d.LastPushAt != nil {
		r.LastPush = formatTime(*d.LastPushAt)
	}
	if d.LastPullAt != nil {
		r.LastPull = formatTime(*d.LastPullAt)
	}
	return r
}

func (s *Server) dashLifecycleRoutes(d fiber.Router) {
	for _, action := range []string{"retire", "revoke"} {
		h := s.dashDeviceAction(action)
		d.Get("/devices/:id/"+action, h)
		d.Post("/devices/:id/"+action, h)
	}
}

// dashDeviceAction shows what retiring or revoking a device does, with its
// figures, and a button that posts the confirmation; the POST with
// confirm=yes acts and goes back to the device list. A POST without it
// shows the page again.
func (s *Server) dashDeviceAction(action string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		l := lang(c)
		p := dashPrincipal(c)
		ctx := c.UserContext()
		if err := onlyParams(c, "org"); err != nil {
			return err
		}
		org, err := s.dashOrg(c)
		if err != nil {
			return err
		}
		id, err := uuid.Parse(c.Params("id"))
		if err != nil {
			return &pageError{status: fiber.StatusNotFound, msg: text("err_404", l)}
		}
		d, err := s.Device(ctx, scopeOrg(p), id)
		if err != nil {
			return err
		}
		if p.Role == RoleAdmin && d.UnitID != uuid.Nil {
			if u, err := s.unit(ctx, d.UnitID); err == nil && u.OrgID != org.ID {
				org, _ = s.organisation(ctx, u.OrgID)
			}
		}
		names, _, err := s.unitNames(ctx, org.ID)
		if err != nil {
			return err
		}
		refused := ""
		if action == "retire" && d.State == StateLost {
			refused = text("retire_refused", l)
		}
		if c.Method() == fiber.MethodPost && c.FormValue("confirm") == "yes" && refused == "" {
			switch {
			case action == "retire" && d.State == StateActive:
				err = s.RetireDevice(ctx, d.ID, p.Actor())
			case action == "revoke" && d.State != StateLost:
				err = s.RevokeDevice(ctx, d.ID, p.Actor())
			}
			if err != nil {
				return err
			}
			return c.Redirect(dashURL(c, "/dashboard/devices"), fiber.StatusSeeOther)
		}
		row := deviceRowOf(*d, names, l)
		return s.render(c, "device_confirm", l, map[string]any{"Signed": true, "Device": row, "Action": action,
			"Title": text(action+"_question", l), "Cancel": dashURL(c, "/dashboard/devices"),
			"Action_URL":  dashURL(c, "/dashboard/devices/"+d.ID.String()+"/"+action),
			"Question":    text(action+"_question", l),
			"Consequence": fmt.Sprintf("%s (%s: %s, %s: %s, %s: %d)", text(action+"_consequence", l), text("last_push", l), row.LastPush, text("last_pull", l), row.LastPull, text("mutations", l), row.Mutations),
			"Button":      text(action+"_confirm", l),
			"Refused":     refused})
	}
}
