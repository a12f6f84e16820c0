package wire_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// testPushResponses are push answers as encoding/json marshals them: of
// applied mutations with and without change numbers, duplicates,
// re-stamped versions and rejections with an error and a current state.
func testPushResponses() [][]byte {
	clock := hlc.NewClock(time.Now, 0)
	var out [][]byte
	add := func(r *wire.PushResponse) {
		b, err := json.Marshal(r)
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	add(&wire.PushResponse{Versions: wire.Current()})
	add(&wire.PushResponse{Versions: wire.Current(), Clock: clock.Now(), Results: []wire.Result{}})
	applied := &wire.PushResponse{Versions: wire.Current(), LastSeq: 500, Clock: clock.Now()}
	for i := range 500 {
		r := wire.Result{Seq: int64(i + 1), Status: wire.Applied, Change: int64(1000 + i)}
		switch i % 50 {
		case 7:
			r.Change = 0
		case 9:
			r.Status = wire.Duplicate
		case 11:
			r.Version = clock.Now()
		}
		applied.Results = append(applied.Results, r)
	}
	add(applied)
	current := wire.Change{Kind: schema.KindContact, ID: uuid.Must(uuid.NewV7()), Seq: 12, Fields: json.RawMessage(`{"setting":"street"}`), V: "k"}
	add(&wire.PushResponse{Versions: wire.Current(), LastSeq: 2, Clock: clock.Now(), Results: []wire.Result{
		{Seq: 1, Status: wire.Applied, Change: 3},
		{Seq: 2, Status: wire.Rejected, Error: &wire.Error{Code: wire.CodeInvalidRecord, Field: "setting", Message: "not a setting"}, Current: &current},
	}})
	out = append(out,
		[]byte(` { "results" : [ { "change" : 4 , "seq" : -2 , "status" : "odd" } ] , "last_seq" : 0 } `),
		[]byte(`{"results":null,"clock":"`+clock.Now().String()+`"}`),
		[]byte(`{"Results":[{"Seq":1}]}`),
		[]byte(`{"results":[{"seq":1.5}]}`),
		[]byte(`{"results":[{"seq":01}]}`),
		[]byte(`{"results":[{"seq":1}]}x`),
		[]byte(`{"last_seq":99999999999999999999}`),
		[]byte(`{"results":[{"status":"appl\u0069ed"}]}`),
		[]byte(`{"clock":"not a clock"}`),
		[]byte(`{"protocol":1,"protocol":2}`),
	)
	return out
}

// TestParsePushResponse holds ParsePushResponse to what encoding/json
// makes of each answer, the forms it reads itself and the ones it leaves
// to encoding/json alike.
func TestParsePushResponse(t *testing.T) {
	for _, data := range testPushResponses() {
		got, err := wire.ParsePushResponse(data)
		agreePushResponse(t, data, got, err)
	}
}

// FuzzParsePushResponse holds ParsePushResponse to encoding/json: what one
// refuses, the other refuses; what both accept, they read alike.
func FuzzParsePushResponse(f *testing.F) {
	for _, data := range testPushResponses() {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := wire.ParsePushResponse(data)
		agreePushResponse(t, data, got, err)
	})
}

func agreePushResponse(t *testing.T, data []byte, got *wire.PushResponse, err error) {
	t.Helper()
	var want wire.PushResponse
	stdErr := json.Unmarshal(data, &want)
	switch {
	case stdErr != nil && err == nil:
		t.Fatalf("accepted what encoding/json refuses (%v): %q", stdErr, data)
	case stdErr == nil && err != nil:
		t.Fatalf("refused what encoding/json accepts: %v: %q", err, data)
	case err == nil && !reflect.DeepEqual(got, &want):
		t.Fatalf("differs from encoding/json:\n got %+v\nwant %+v\n%q", got, &want, data)
	}
}

// BenchmarkParsePushResponse reads a 500-mutation push answer.
func BenchmarkParsePushResponse(b *testing.B) {
	data := testPushResponses()[2]
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := wire.ParsePushResponse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshalPushResponse is BenchmarkParsePushResponse with
// encoding/json, for comparison.
func BenchmarkUnmarshalPushResponse(b *testing.B) {
	data := testPushResponses()[2]
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var resp wire.PushResponse
		if err := json.Unmarshal(data, &resp); err != nil {
			b.Fatal(err)
		}
	}
}
