package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
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
	if _, err := run("restore", "--from", db, "--db", db); !errors.Is(err, errUsage) {
		t.Errorf("restore of the database onto itself: %v", err)
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

// TestHealEndpoint: every sync answer carries the epoch; a record sent
// again at the versions the server has changes nothing, one it lacks is
// taken, one out of the device's scope or stamped in the future is
// refused alone; acked_through brings the device's numbering forward; a
// revoked device heals nothing.
func TestHealEndpoint(t *testing.T) {
	b := startBryggad(t)
	manager := b.account(t, "manager").AccessToken
	dev := b.enrol(t, manager, b.outreach)
	first := dev.contact("", "2380")
	dev.mustPush(t, b, first)

	// The epoch, on answers and errors alike.
	epochOf := func(method, path string, body string) (int, string) {
		req, _ := http.NewRequest(method, b.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+dev.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get(wire.HeaderEpoch)
	}
	st, epoch := epochOf("GET", fmt.Sprintf("/v1/sync/pull?protocol=%d&schema=%d", wire.Protocol, schema.Version), "")
	if _, err := uuid.Parse(epoch); st != 200 || err != nil {
		t.Fatalf("pull: %d, epoch %q", st, epoch)
	}
	if st, e := epochOf("POST", "/v1/sync/push", dev.pushJSON(9, []mut{create(dev.contact("", "2380"), nil)})); st != 409 || e != epoch {
		t.Errorf("a refused push: %d, epoch %q, want %q", st, e, epoch)
	}

	var have wire.Change
	for _, c := range pullAll(t, b, dev.AccessToken) {
		if c.ID == first.ID {
			have = c
		}
	}
	lacked := dev.contact("", "2380")
	lackedChange := wire.Change{Kind: schema.KindContact, ID: lacked.ID, Fields: json.RawMessage(fieldsWith(lacked, nil)), V: replica.Key(dev.clock.Now(), dev.DeviceID)}
	future := dev.contact("", "2380")
	futureChange := wire.Change{Kind: schema.KindContact, ID: future.ID, Fields: json.RawMessage(fieldsWith(future, nil)), V: replica.Key(hlc.FromTime(time.Now().Add(time.Hour)), dev.DeviceID)}
	foreign := dev.contact("", "2380")
	foreign.UnitID = uuid.Must(uuid.NewV7())
	foreignChange := wire.Change{Kind: schema.KindContact, ID: foreign.ID, Fields: json.RawMessage(fieldsWith(foreign, nil)), V: replica.Key(dev.clock.Now(), dev.DeviceID)}
	heal := wire.HealRequest{Versions: wire.Current(), Epoch: uuid.NewString(), AckedThrough: 7, Records: []wire.Change{have, lackedChange, futureChange, foreignChange}}
	var resp wire.HealResponse
	if st, e := b.call(t, "POST", "/v1/sync/heal", dev.AccessToken, heal, &resp); e != nil {
		t.Fatalf("heal: %d %v", st, e)
	}
	want := []wire.HealStatus{wire.Unchanged, wire.Healed, wire.Refused, wire.Refused}
	for i, r := range resp.Results {
		if r.Status != want[i] {
			t.Errorf("record %d: %s (%+v), want %s", i, r.Status, r.Error, want[i])
		}
	}
	if resp.Epoch != epoch || resp.LastSeq != 7 {
		t.Errorf("heal answer: epoch %s, last_seq %d", resp.Epoch, resp.LastSeq)
	}
	// Again: nothing changes.
	if _, e := b.call(t, "POST", "/v1/sync/heal", dev.AccessToken, heal, &resp); e != nil || resp.Results[1].Status != wire.Unchanged {
		t.Errorf("heal again: %v %+v", e, resp.Results)
	}
	found := false
	for _, c := range pullAll(t, b, dev.AccessToken) {
		found = found || c.ID == lacked.ID
	}
	if !found {
		t.Error("the record the server lacked is not pulled")
	}
	dev.next = 8
	dev.mustPush(t, b, dev.contact("", "2380"))

	if st, e := b.call(t, "POST", "/v1/devices/"+dev.DeviceID.String()+"/revoke", manager, map[string]bool{"confirm": true}, nil); e != nil {
		t.Fatalf("revoke: %d %v", st, e)
	}
	if st, e := b.call(t, "POST", "/v1/sync/heal", dev.AccessToken, heal, nil); st != 403 || e.Code != wire.CodeDeviceRevoked {
		t.Errorf("heal of a revoked device: %d %v", st, e)
	}
}
