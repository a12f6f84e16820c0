package brygga

import (
	"context"
	"fmt"
	"net/url"

	"github.com/google/uuid"
)

// MaxEnrolCodes is the most codes EnrolCodes makes in one call.
const MaxEnrolCodes = 10000

// EnrolCodes logs in to the server at server as a staff member who may
// enrol tablets (a manager, or an admin) and makes n one-time enrolment
// codes for unit, or for the staff member's own unit if unit is uuid.Nil.
// It is for scripts, demos and load tests that enrol many tablets at once;
// an app passes the code its manager shows to Enroll instead. opts'
// HTTPClient makes the requests (nil opts: the defaults). Errors are
// *APIError, matching ErrUnauthorized for wrong credentials and ErrForbidden
// for a role that may not enrol or a unit outside the organisation.
func EnrolCodes(ctx context.Context, server, username, password string, unit uuid.UUID, n int, opts *Options) ([]string, error) {
	if n < 1 || n > MaxEnrolCodes {
		return nil, fmt.Errorf("enrolment codes: %d codes asked for, want 1 to %d", n, MaxEnrolCodes)
	}
	if err := checkServerURL(server); err != nil {
		return nil, err
	}
	c := &Client{}
	if opts != nil {
		c.opts = *opts
	}
	if c.opts.HTTPClient == nil {
		c.opts.defaults()
		defer c.opts.HTTPClient.CloseIdleConnections() // its own: nothing else uses it
	}
	c.opts.defaults()
	var login struct {
		AccessToken string    `json:"access_token"`
		UnitID      uuid.UUID `json:"unit_id"`
	}
	if err := c.call(ctx, server, "POST", "/v1/auth/login", "", map[string]string{"username": username, "password": password}, &login); err != nil {
		return nil, fmt.Errorf("enrolment codes: %w", err)
	}
	if unit == uuid.Nil {
		if unit = login.UnitID; unit == uuid.Nil {
			return nil, fmt.Errorf("enrolment codes: %s belongs to no unit: name one", username)
		}
	}
	codes := make([]string, 0, n)
	for range n {
		var code struct {
			Code string `json:"code"`
		}
		if err := c.call(ctx, server, "POST", "/v1/devices/enroll-codes", login.AccessToken, map[string]uuid.UUID{"unit_id": unit}, &code); err != nil {
			return nil, fmt.Errorf("enrolment codes: %w", err)
		}
		codes = append(codes, code.Code)
	}
	return codes, nil
}

// checkServerURL checks that s is an http or https URL with a host.
func checkServerURL(s string) error {
	if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http or https server URL", s)
	}
	return nil
}
