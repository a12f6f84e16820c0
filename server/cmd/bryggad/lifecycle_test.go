package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/wire"
)

// TestRetireAndRevokeConfirmed drives both ways a device leaves service
// through the API and the command line, each confirmed after it is said
// what will happen: a retired device pushes and does not pull, a revoked
// (lost) one is refused everything, lost overrides retired and retiring a
// lost device is refused.
func TestRetireAndRevokeConfirmed(t *testing.T) {
	b := startBryggad(t)
	manager := b.account(t, "manager").AccessToken
	retiring := b.enrol(t, manager, b.outreach)
	retiring.mustPush(t, b, retiring.contact("", "2380"))
	pullPath := fmt.Sprintf("/v1/sync/pull?protocol=%d&schema=%d", wire.Protocol, schema.Version)

	// Without a confirmation nothing happens, and the answer says what
	// would, with the device's figures.
	path := "/v1/devices/" + retiring.DeviceID.String()
	for _, body := range []any{nil, map[string]bool{"confirm": false}} {
		st, e := b.call(t, "POST", path+"/retire", manager, body, nil)
		if st != 409 || e == nil || e.Code != wire.CodeConfirmationRequired || !strings.Contains(e.Message, "holds 1 of its records' writes") ||
			!strings.Contains(e.Message, "may still send the records it holds") {
			t.Errorf("retire without confirming (%v): %d %v", body, st, e)
		}
	}
	if st, e := b.call(t, "POST", path+"/revoke", manager, nil, nil); st != 409 || e.Code != wire.CodeConfirmationRequired || !strings.Contains(e.Message, "accepts nothing from it") {
		t.Errorf("revoke without confirming: %d %v", st, e)
	}
	if r := getAs(b, pullPath, retiring.AccessToken)(t); r.status != 200 {
		t.Fatalf("the device is still active: pull %d %v", r.status, r.err)
	}

	var info struct {
		State      string `json:"state"`
		Mutations  int64  `json:"mutations"`
		LastPushAt string `json:"last_push_at"`
	}
	if st, e := b.call(t, "POST", path+"/retire", manager, map[string]bool{"confirm": true}, &info); e != nil || info.State != "retired" || info.Mutations != 1 || info.LastPushAt == "" {
		t.Fatalf("retire: %d %v %+v", st, e, info)
	}
	// A retired device sends what it holds, and pulls nothing.
	retiring.mustPush(t, b, retiring.contact("", "2380"))
	if r := getAs(b, pullPath, retiring.AccessToken)(t); r.status != 403 || r.err == nil || r.err.Code != wire.CodeDeviceRetired {
		t.Errorf("pull of a retired device: %d %v", r.status, r.err)
	}
	// Retiring again changes nothing; lost overrides retired; a lost device
	// cannot be retired.
	if st, e := b.call(t, "POST", path+"/retire", manager, nil, &info); e != nil || info.State != "retired" {
		t.Errorf("retire again: %d %v %+v", st, e, info)
	}
	if st, e := b.call(t, "POST", path+"/revoke", manager, map[string]bool{"confirm": true}, &info); e != nil || info.State != "lost" {
		t.Errorf("revoke the retired device: %d %v %+v", st, e, info)
	}
	if r := retiring.push(b, create(retiring.contact("", "2380"), nil))(t); r.status != 403 || r.err.Code != wire.CodeDeviceRevoked {
		t.Errorf("push of a lost device: %d %v", r.status, r.err)
	}
	if st, e := b.call(t, "POST", path+"/retire", manager, map[string]bool{"confirm": true}, nil); st != 403 || e.Code != wire.CodeDeviceRevoked {
		t.Errorf("retire a lost device: %d %v", st, e)
	}

	// The command line: it says what will happen and asks for yes.
	ctx := context.Background()
	run := func(stdin io.Reader, args ...string) (string, error) {
		var out bytes.Buffer
		err := Run(ctx, args, stdin, &out, io.Discard)
		return out.String(), err
	}
	other := b.enrol(t, manager, b.outreach)
	id := other.DeviceID.String()
	out, err := run(strings.NewReader("no\n"), "device", "retire", "--db", b.db, "--id", id)
	if !errors.Is(err, errNotConfirmed) || !strings.Contains(out, "may still send the records it holds") || !strings.Contains(out, "Type yes") {
		t.Errorf("retire answered no: %v %q", err, out)
	}
	devNull, _ := os.Open(os.DevNull)
	defer devNull.Close()
	if _, err := run(devNull, "device", "retire", "--db", b.db, "--id", id); !errors.Is(err, errNotConfirmed) {
		t.Errorf("retire from a script without --yes: %v", err)
	}
	if out, err := run(strings.NewReader("yes\n"), "device", "retire", "--db", b.db, "--id", id); err != nil || !strings.Contains(out, "retired "+id) {
		t.Errorf("retire answered yes: %v %q", err, out)
	}
	if r := getAs(b, pullPath, other.AccessToken)(t); r.status != 403 || r.err.Code != wire.CodeDeviceRetired {
		t.Errorf("pull after bryggad device retire: %d %v", r.status, r.err)
	}
	if out, err := run(nil, "device", "revoke", "--db", b.db, "--id", id, "--yes"); err != nil || !strings.Contains(out, "accepts nothing from it") || !strings.Contains(out, "revoked "+id) {
		t.Errorf("revoke --yes: %v %q", err, out)
	}
	if _, err := run(nil, "device", "retire", "--db", b.db, "--id", id, "--yes"); err == nil {
		t.Error("a lost device was retired")
	}
	list, err := run(nil, "device", "list", "--db", b.db)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && (f[0] == id || f[0] == retiring.DeviceID.String()) && (len(f) != 7 || f[2] != "lost") {
			t.Errorf("device list: %q", line)
		}
		if len(f) > 0 && f[0] == retiring.DeviceID.String() && f[5] != "2" {
			t.Errorf("device list counts %s mutations of the retired device, want 2: %q", f[5], line)
		}
	}
	if !strings.Contains(list, "LAST PUSH") || !strings.Contains(list, "LAST PULL") {
		t.Errorf("device list: %q", list)
	}
}

// TestBackupAndRestoreCommands: a backup is taken while the server runs;
// a restore is refused while it runs, and once it stopped it puts the copy
// in place with a new epoch and lists the revocations the copy lacks.
func TestBackupAndRestoreCommands(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	db := filepath.Join(dir, "brygga.db")
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"serve", "--db", db, "--addr", "127.0.0.1:0", "--demo"}, nil, out, io.Discard)
	}()
	b := waitBryggad(t, out, done)
	b.db = db
	manager := b.account(t, "manager").AccessToken
	dev := b.enrol(t, manager, b.outreach)
	dev.mustPush(t, b, dev.contact("", "2380"))

	run := func(args ...string) (string, error) {
		var o bytes.Buffer
		err := Run(context.Background(), args, nil, &o, io.Discard)
		return o.String(), err
	}
	copyPath := filepath.Join(dir, "copy.db")
	if o, err := run("backup", "--db", db, "--out", copyPath); err != nil || !strings.Contains(o, "epoch") {
		t.Fatalf("backup while serving: %v %q", err, o)
	}
	if _, err := run("backup", "--db", db, "--out", copyPath); err == nil {
		t.Error("a backup over an existing file")
	}
	if _, err := run("device", "revoke", "--db", db, "--id", dev.DeviceID.String(), "--yes"); err != nil {
		t.Fatal(err)
	}
	if _, err := run("restore", "--from", copyPath, "--db", db); !errors.Is(err, errServing) {
		t.Errorf("restore while serving: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	o, err := run("restore", "--from", copyPath, "--db", db)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(o, "bryggad device revoke --db "+db+" --id "+dev.DeviceID.String()) || !strings.Contains(o, "restored "+db) {
		t.Errorf("restore output: %q", o)
	}
	kept, _ := filepath.Glob(db + ".replaced-*")
	if len(kept) != 1 {
		t.Errorf("the replaced database is not kept: %v", kept)
	}
	// The restored database serves; the revocation made after the copy is
	// gone (the admin repeats it), and the device's cursor of the old epoch
	// is refused.
	list, err := run("device", "list", "--db", db)
	if err != nil || !strings.Contains(list, dev.DeviceID.String()) || strings.Contains(list, "lost") {
		t.Errorf("device list after the restore: %v %q", err, list)
	}
}
