package brygga_test

import (
	"context"
	"errors"
	"testing"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

// TestUnreachable tells a sync that could not reach the server from one
// the server answered, through the real SDK and a real server.
func TestUnreachable(t *testing.T) {
	ctx := context.Background()
	r := startRegion(t)
	dev := r.device(r.url(), r.team, r.teamStaf)
	other := r.device(r.url(), r.team, r.teamStaf)
	if err := dev.Add(ctx, contact(schema.SettingStreet)); err != nil {
		t.Fatal(err)
	}
	if brygga.Unreachable(nil) {
		t.Error("no error is unreachable")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := dev.Sync(cancelled); err == nil || brygga.Unreachable(err) {
		t.Errorf("a sync with a cancelled context: %v, unreachable %v", err, brygga.Unreachable(err))
	}

	r.stop()
	err := dev.Sync(ctx)
	if !brygga.Unreachable(err) {
		t.Errorf("a sync with the server stopped: %v is not unreachable", err)
	}
	if st, serr := dev.Status(ctx); serr != nil || st.Pending != 1 {
		t.Errorf("after the sync that could not reach the server: %+v, %v", st, serr)
	}
	r.restart()
	if err := dev.Sync(ctx); err != nil {
		t.Fatal(err)
	}

	if err := r.srv.RevokeDevice(ctx, other.DeviceID(), "test"); err != nil {
		t.Fatal(err)
	}
	if err := other.Sync(ctx); !errors.Is(err, brygga.ErrRevoked) || brygga.Unreachable(err) {
		t.Errorf("a revoked device's sync: %v, unreachable %v", err, brygga.Unreachable(err))
	}
}
