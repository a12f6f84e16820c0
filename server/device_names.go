package server

import (
	"context"
	"fmt"
	"regexp"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/brygga/brygga/sync/wire"
)

// MaxDeviceName is the longest name a tablet may be given, in characters.
const MaxDeviceName = 32

// deviceNamePattern is what a tablet's name may be: letters, digits,
// spaces and hyphens, starting and ending with a letter or digit, no two
// spaces or hyphens in a row. A label such as "Van 1" or "Bil-2 Krokom",
// and no room for sentences: punctuation is what free text needs.
var deviceNamePattern = regexp.MustCompile(`^[\p{L}\p{N}]+(?:[ -][\p{L}\p{N}]+)*$`)

// ValidDeviceName reports whether name may name a tablet: empty (no name),
// or up to MaxDeviceName letters, digits, single spaces and hyphens,
// starting and ending with a letter or digit.
func ValidDeviceName(name string) bool {
	if name == "" {
		return true
	}
	return len([]rune(name)) <= MaxDeviceName && deviceNamePattern.MatchString(name)
}

// errDeviceName is the answer to a name ValidDeviceName refuses.
var errDeviceName = &wire.Error{Code: wire.CodeMalformed, Field: "name",
	Message: fmt.Sprintf("name must be up to %d letters, digits, single spaces and hyphens, such as \"Van 1\"; never a person's name or other text", MaxDeviceName)}

// SetDeviceName names the device id on behalf of actor and audits it (the
// name itself is not in the audit log); an empty name removes it. Errors:
// ErrNotFound for a device not of org's units (any unit for the nil org),
// a *wire.Error with CodeMalformed for a name ValidDeviceName refuses.
func (s *Server) SetDeviceName(ctx context.Context, org, id uuid.UUID, name, actor string) error {
	if !ValidDeviceName(name) {
		return errDeviceName
	}
	if _, err := s.Device(ctx, org, id); err != nil {
		return err
	}
	if err := s.store.SetDeviceName(ctx, id, name, s.now()); err != nil {
		return err
	}
	s.audit(ctx, actor, "device_name", "device:"+id.String(), "ok", 0, "")
	return nil
}

// deviceNames returns the names of the devices that have one.
func (s *Server) deviceNames(ctx context.Context) (map[uuid.UUID]string, error) {
	return s.store.DeviceNames(ctx)
}

// putDeviceName answers PUT /v1/devices/{id}/name: {"name": "Van 1"}
// names a device of the user's organisation, {"name": ""} removes the
// name; the answer is the device.
func (s *Server) putDeviceName(c *fiber.Ctx) error {
	p, _ := s.principal(c)
	d, err := s.managedDevice(c)
	if err != nil {
		return err
	}
	var req struct {
		Name *string `json:"name"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Name == nil {
		return &wire.Error{Code: wire.CodeMalformed, Field: "name", Message: `name is required: {"name": "Van 1"}, or "" to remove it`}
	}
	if err := s.SetDeviceName(c.UserContext(), scopeOrg(p), d.ID, *req.Name, p.Actor()); err != nil {
		return err
	}
	return s.answerDevice(c, d.ID)
}
