package wire_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// TestAppendPushRequest checks the push encoder against encoding/json, for
// requests as a device makes them and for odd ones.
func TestAppendPushRequest(t *testing.T) {
	clock := hlc.NewClock(time.Now, 0)
	reqs := []*wire.PushRequest{
		{Versions: wire.Current()},
		{Versions: wire.Current(), Clock: clock.Now(), Mutations: []wire.Mutation{}},
		{Versions: wire.Current(), Clock: clock.Now(), Mutations: []wire.Mutation{
			{Seq: 1, Kind: schema.KindContact, ID: uuid.Must(uuid.NewV7()), Version: clock.Now(), Fields: json.RawMessage(`{"setting":"street","voided":false}`)},
			{Seq: 2, Kind: `odd "kind" <&>`, ID: uuid.Must(uuid.NewV7()), Version: clock.Now(), Fields: json.RawMessage(`{"a":"\u003c\u0026\u003e","b":[1,2.5e3,null]}`)},
			{Seq: 3, Kind: "bad \xff utf-8 \u2028", Version: clock.Now()},
			{Seq: 4, Kind: schema.KindReferral, ID: uuid.Must(uuid.NewV7()), Version: clock.Now(), Fields: json.RawMessage(`{"status":"received"}`), Base: 41},
		}},
	}
	for i, req := range reqs {
		want, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := wire.AppendPushRequest(nil, req); !bytes.Equal(got, want) {
			t.Fatalf("request %d:\n got %s\nwant %s", i, got, want)
		}
	}
	// Fields not in the compact form are copied as they are: the request
	// reads the same.
	req := &wire.PushRequest{Versions: wire.Current(), Clock: clock.Now(), Mutations: []wire.Mutation{
		{Seq: 1, Kind: schema.KindContact, ID: uuid.Must(uuid.NewV7()), Version: clock.Now(), Fields: json.RawMessage("{ \"setting\" : \"street\" }")},
	}}
	got, err := wire.ParsePushRequest(wire.AppendPushRequest(nil, req))
	if err != nil || string(got.Mutations[0].Fields) != string(req.Mutations[0].Fields) {
		t.Fatalf("read back %+v, %v", got, err)
	}
}

// FuzzAppendPushRequest holds the push encoder to encoding/json: byte for
// byte for fields in the compact form, the same request read back for any
// other valid fields.
func FuzzAppendPushRequest(f *testing.F) {
	f.Add(2, 7, uint64(1<<20), int64(1), "contacts", []byte("0123456789abcdef"), uint64(1<<21), []byte(`{"setting":"street"}`), uint8(3))
	f.Add(-1, 0, uint64(0), int64(-5), "<&>\u2028\xff\"\\", []byte{}, uint64(0), []byte(` { "a" : [ 1 , "<" ] } `), uint8(1))
	f.Add(2, 7, uint64(1), int64(9), "", []byte{1}, uint64(2), []byte(`null`), uint8(0))
	f.Fuzz(func(t *testing.T, protocol, schemaVersion int, clock uint64, seq int64, kind string, id []byte, version uint64, fields []byte, n uint8) {
		if !json.Valid(fields) {
			return
		}
		var uid uuid.UUID
		copy(uid[:], id)
		compact, err := json.Marshal(json.RawMessage(fields))
		if err != nil {
			t.Fatal(err)
		}
		req := &wire.PushRequest{Versions: wire.Versions{Protocol: protocol, Schema: schemaVersion}, Clock: hlc.Timestamp(clock)}
		raw := &wire.PushRequest{Versions: req.Versions, Clock: req.Clock}
		for i := range int(n % 8) {
			m := wire.Mutation{Seq: seq + int64(i), Kind: schema.Kind(kind), ID: uid, Version: hlc.Timestamp(version), Fields: compact, Base: seq * int64(i%2)}
			req.Mutations = append(req.Mutations, m)
			m.Fields = fields
			raw.Mutations = append(raw.Mutations, m)
		}
		want, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := wire.AppendPushRequest(nil, req); !bytes.Equal(got, want) {
			t.Fatalf("\n got %s\nwant %s", got, want)
		}
		// Fields as they came: the same request, read by encoding/json.
		var back, wantBack wire.PushRequest
		if err := json.Unmarshal(wire.AppendPushRequest(nil, raw), &back); err != nil {
			t.Fatalf("the encoding of fields as they came is not JSON: %v", err)
		}
		if err := json.Unmarshal(want, &wantBack); err != nil {
			t.Fatal(err)
		}
		for i := range back.Mutations {
			c, _ := json.Marshal(back.Mutations[i].Fields)
			back.Mutations[i].Fields = c
		}
		b1, _ := json.Marshal(&back)
		b2, _ := json.Marshal(&wantBack)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("read back\n got %s\nwant %s", b1, b2)
		}
	})
}

// TestAppendPushResponse checks the push answer's encoder against
// encoding/json: answers of applied and duplicate mutations, re-stamped
// or not, and answers with rejections, which encoding/json writes.
func TestAppendPushResponse(t *testing.T) {
	clock := hlc.NewClock(time.Now, 0)
	results := []wire.Result{
		{Seq: 1, Status: wire.Applied, Change: 7},
		{Seq: 2, Status: wire.Applied},
		{Seq: 3, Status: wire.Duplicate, Version: clock.Now()},
		{Seq: 4, Status: wire.Applied, Version: clock.Now(), Change: 9},
		{Seq: 5, Status: `odd "status" <&>`},
	}
	rejected := append(slices.Clone(results), wire.Result{Seq: 6, Status: wire.Rejected,
		Error: &wire.Error{Code: wire.CodeInvalidRecord, Field: "gender", Message: "<bad>"}})
	current := append(slices.Clone(results), wire.Result{Seq: 6, Status: wire.Rejected,
		Current: &wire.Change{Kind: schema.KindContact, ID: uuid.Must(uuid.NewV7()), Seq: 3, Fields: json.RawMessage(`{"voided":true}`), V: "v"}})
	for i, resp := range []*wire.PushResponse{
		{},
		{Versions: wire.Current(), LastSeq: 5, Clock: clock.Now(), Results: []wire.Result{}},
		{Versions: wire.Current(), LastSeq: 5, Clock: clock.Now(), Results: results},
		{Versions: wire.Current(), LastSeq: -1, Clock: clock.Now(), Results: rejected},
		{Versions: wire.Current(), LastSeq: 6, Clock: clock.Now(), Results: current},
	} {
		want, err := json.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		got, err := wire.AppendPushResponse([]byte("x"), resp)
		if err != nil || !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Errorf("response %d: %v\n got %s\nwant x%s", i, err, got, want)
		}
	}
}

// FuzzAppendPushResponse holds the push answer's encoder to encoding/json,
// byte for byte.
func FuzzAppendPushResponse(f *testing.F) {
	f.Add(2, 7, int64(5), uint64(1<<20), int64(1), "applied", uint64(0), int64(7), uint8(3))
	f.Add(-1, 0, int64(-5), uint64(0), int64(-9), "<&>\u2028\xff\"\\", uint64(1<<21), int64(0), uint8(1))
	f.Add(2, 7, int64(0), uint64(1), int64(0), "", uint64(2), int64(-1), uint8(0))
	f.Fuzz(func(t *testing.T, protocol, schemaVersion int, lastSeq int64, clock uint64, seq int64, status string, version uint64, change int64, n uint8) {
		resp := &wire.PushResponse{Versions: wire.Versions{Protocol: protocol, Schema: schemaVersion}, LastSeq: lastSeq, Clock: hlc.Timestamp(clock)}
		if n > 0 {
			resp.Results = []wire.Result{}
		}
		for i := range int64(n % 8) {
			resp.Results = append(resp.Results, wire.Result{Seq: seq + i, Status: wire.Status(status), Version: hlc.Timestamp(version >> i), Change: change * i})
		}
		want, err := json.Marshal(resp)
		if err != nil {
			t.Skip(err)
		}
		got, err := wire.AppendPushResponse(nil, resp)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%v\n got %s\nwant %s", err, got, want)
		}
	})
}
