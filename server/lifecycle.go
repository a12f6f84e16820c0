package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// LifecycleStore is the part of the SyncStore that takes records sent
// again after a restore and copies the database.
type LifecycleStore interface {
	// Heal merges records a device sends again; see replica.ServerStore.Heal.
	Heal(ctx context.Context, deviceID uuid.UUID, req *wire.HealRequest) (*wire.HealResponse, error)
	// Epoch is the database's epoch, which changes when it is restored.
	Epoch() uuid.UUID
	// Backup writes a consistent copy of the database with an epoch of its
	// own to path, which must not exist, and returns the copy's epoch.
	Backup(ctx context.Context, path string) (uuid.UUID, error)
}

// Device states, as DeviceInfo.State gives them.
const (
	StateActive  = "active"  // syncs
	StateRetired = "retired" // taken out of service: sends what it holds, pulls nothing, then wipes
	StateLost    = "lost"    // revoked as lost or stolen: refused everything, wiped at its next contact
)

// DeviceLifecycle is what a manager weighs before retiring or revoking a
// device: its state, when it last pushed and pulled, and how many of its
// mutations the server holds.
type DeviceLifecycle struct {
	State      string     `json:"state"`
	RetiredAt  *time.Time `json:"retired_at,omitempty"`
	LastPushAt *time.Time `json:"last_push_at,omitempty"`
	LastPullAt *time.Time `json:"last_pull_at,omitempty"`
	// Mutations is how many of the device's writes the server applied.
	Mutations int64 `json:"mutations"`
	// Healed is how many records the device sent again after a restore of
	// the server or a re-enrolment.
	Healed int64 `json:"healed"`
}

func lifecycleOf(d *replica.EnrolledDevice) DeviceLifecycle {
	l := DeviceLifecycle{State: StateActive, RetiredAt: timePtr(d.RetiredAt), LastPushAt: timePtr(d.LastPushAt),
		LastPullAt: timePtr(d.LastPullAt), Mutations: d.Applied, Healed: d.Healed}
	switch {
	case !d.RevokedAt.IsZero():
		l.State = StateLost
	case !d.RetiredAt.IsZero():
		l.State = StateRetired
	}
	return l
}

// Device returns the device with id as managers see it, if it is of org's
// units (any unit for the nil org). ErrNotFound otherwise.
func (s *Server) Device(ctx context.Context, org, id uuid.UUID) (*DeviceInfo, error) {
	devs, err := s.DevicesOf(ctx, org)
	if err != nil {
		return nil, err
	}
	for i := range devs {
		if devs[i].ID == id {
			return &devs[i], nil
		}
	}
	return nil, fmt.Errorf("device %s: %w", id, ErrNotFound)
}

func when(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// RetireConsequence says what retiring d does, with its figures.
func RetireConsequence(d *DeviceInfo) string {
	if d.State == StateLost {
		return fmt.Sprintf("Device %s is revoked as lost or stolen: it cannot be retired.", d.ID)
	}
	return fmt.Sprintf("Retire device %s (taken out of service): it last pushed %s and last pulled %s; the server holds %d of its records' writes. "+
		"It may still send the records it holds, pulls nothing more, and its replica is wiped once everything it holds is sent. "+
		"Records it holds are not lost. If the tablet is lost or stolen, revoke it instead.",
		d.ID, when(d.LastPushAt), when(d.LastPullAt), d.Mutations)
}

// RevokeConsequence says what revoking d as lost or stolen does, with its
// figures.
func RevokeConsequence(d *DeviceInfo) string {
	return fmt.Sprintf("Revoke device %s as lost or stolen: it last pushed %s and last pulled %s; the server holds %d of its records' writes. "+
		"From now on the server accepts nothing from it, not even its unsent records, and its replica is wiped when it next reaches the server: "+
		"whatever it recorded after its last push is lost. If the tablet is only taken out of service, retire it instead.",
		d.ID, when(d.LastPushAt), when(d.LastPullAt), d.Mutations)
}

// RetireDevice retires a device on behalf of actor and audits it. Errors:
// ErrNotFound, a *wire.Error with CodeDeviceRevoked for a device revoked
// as lost or stolen.
func (s *Server) RetireDevice(ctx context.Context, id uuid.UUID, actor string) error {
	err := s.store.RetireDevice(ctx, id)
	switch {
	case errors.Is(err, replica.ErrUnknownDevice):
		return fmt.Errorf("device %s: %w", id, ErrNotFound)
	case errors.Is(err, replica.ErrDeviceRevoked):
		return &wire.Error{Code: wire.CodeDeviceRevoked, Field: "id", Message: "the device is revoked as lost or stolen: it stays revoked and cannot be retired"}
	case err != nil:
		return err
	}
	s.audit(ctx, actor, "retire", "device:"+id.String(), "ok", 0, "")
	return nil
}

// Backup writes a consistent copy of the database to path while the
// server runs, with an epoch of its own, and returns the copy's epoch.
func (s *Server) Backup(ctx context.Context, path string) (uuid.UUID, error) {
	return s.store.Backup(ctx, path)
}

// Epoch returns the database's epoch.
func (s *Server) Epoch() uuid.UUID { return s.store.Epoch() }

// withEpoch sets the epoch header on a sync answer, errors included.
func (s *Server) withEpoch(c *fiber.Ctx) error {
	c.Set(wire.HeaderEpoch, s.store.Epoch().String())
	return c.Next()
}

func (s *Server) heal(c *fiber.Ctx) error {
	if err := requireJSON(c); err != nil {
		return err
	}
	p, _ := s.principal(c)
	body, err := wire.Body(bytes.NewReader(c.Request().Body()), c.Get(fiber.HeaderContentEncoding))
	if err != nil {
		return err
	}
	req, err := wire.DecodeHealRequest(body)
	if err != nil {
		return err
	}
	resp, err := s.store.Heal(c.UserContext(), p.ID, req)
	outcome, rows := "ok", int64(0)
	var we *wire.Error
	if errors.As(err, &we) {
		outcome = string(we.Code)
	} else if err != nil {
		return err
	}
	if resp != nil {
		for _, r := range resp.Results {
			if r.Status == wire.Healed {
				rows++
			}
		}
	}
	s.audit(c.UserContext(), p.Actor(), "heal", "unit:"+p.UnitID.String(), outcome, rows, requestID(c))
	if err != nil {
		return err
	}
	return c.JSON(resp)
}

// confirmBody reads {"confirm": true}; an empty body is no confirmation.
func confirmBody(c *fiber.Ctx) (bool, error) {
	if len(c.Request().Body()) == 0 {
		return false, nil
	}
	var req struct {
		Confirm bool `json:"confirm"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return false, err
	}
	return req.Confirm, nil
}

// managedDevice returns the device of the request's :id that the user may
// manage.
func (s *Server) managedDevice(c *fiber.Ctx) (*DeviceInfo, error) {
	p, _ := s.principal(c)
	id, err := uuid.Parse(c.Params("id"))
	if err != nil {
		return nil, &wire.Error{Code: wire.CodeMalformed, Field: "id", Message: "id must be a device id"}
	}
	d, err := s.Device(c.UserContext(), scopeOrg(p), id)
	if errors.Is(err, ErrNotFound) {
		return nil, &wire.Error{Code: wire.CodeNotFound, Field: "id", Message: "no such device"}
	}
	return d, err
}

func (s *Server) retireDevice(c *fiber.Ctx) error {
	p, _ := s.principal(c)
	d, err := s.managedDevice(c)
	if err != nil {
		return err
	}
	ok, err := confirmBody(c)
	if err != nil {
		return err
	}
	switch {
	case d.State == StateLost:
		return &wire.Error{Code: wire.CodeDeviceRevoked, Field: "id", Message: "the device is revoked as lost or stolen: it stays revoked and cannot be retired"}
	case d.State == StateRetired:
		return c.JSON(d)
	case !ok:
		return &wire.Error{Code: wire.CodeConfirmationRequired, Field: "confirm", Message: RetireConsequence(d) + ` Send {"confirm": true} to retire it.`}
	}
	if err := s.RetireDevice(c.UserContext(), d.ID, p.Actor()); err != nil {
		return err
	}
	return s.answerDevice(c, d.ID)
}

func (s *Server) revokeDevice(c *fiber.Ctx) error {
	p, _ := s.principal(c)
	d, err := s.managedDevice(c)
	if err != nil {
		return err
	}
	ok, err := confirmBody(c)
	if err != nil {
		return err
	}
	switch {
	case d.State == StateLost:
		return c.JSON(d)
	case !ok:
		return &wire.Error{Code: wire.CodeConfirmationRequired, Field: "confirm", Message: RevokeConsequence(d) + ` Send {"confirm": true} to revoke it.`}
	}
	if err := s.RevokeDevice(c.UserContext(), d.ID, p.Actor()); err != nil {
		return err
	}
	return s.answerDevice(c, d.ID)
}

func (s *Server) answerDevice(c *fiber.Ctx, id uuid.UUID) error {
	p, _ := s.principal(c)
	d, err := s.Device(c.UserContext(), scopeOrg(p), id)
	if err != nil {
		return err
	}
	return c.JSON(d)
}
