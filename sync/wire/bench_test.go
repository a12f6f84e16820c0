package wire_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// benchPush is a 1000-mutation push of contacts with every field set, as
// a tablet sends it.
func benchPush(b *testing.B) []byte {
	b.Helper()
	clock := hlc.NewClock(time.Now, 0)
	req := wire.PushRequest{Versions: wire.Current(), Clock: clock.Now()}
	for i := range wire.MaxMutations {
		fields := fmt.Sprintf(`{"unit_id":%q,"device_id":%q,"staff_id":%q,"occurred_at":"2026-11-30T14:%02d:00Z","voided":false,`+
			`"setting":"street","area_code":"2380","gender":"woman","age_band":"25-29","client_code":"7K3MQX2DV"}`,
			uuid.NewString(), uuid.NewString(), uuid.NewString(), i%60)
		req.Mutations = append(req.Mutations, wire.Mutation{Seq: int64(i + 1), Kind: schema.KindContact,
			ID: uuid.Must(uuid.NewV7()), Version: clock.Now(), Fields: json.RawMessage(fields)})
	}
	data, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func BenchmarkDecodePushRequest(b *testing.B) {
	data := benchPush(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := wire.DecodePushRequest(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*wire.MaxMutations), "ns/mutation")
}

// BenchmarkDecodePushRequestJSON reads the same push with encoding/json
// alone, for comparison.
func BenchmarkDecodePushRequestJSON(b *testing.B) {
	data := benchPush(b)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var req wire.PushRequest
		if err := wire.DecodeJSON(bytes.NewReader(data), &req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*wire.MaxMutations), "ns/mutation")
}

func BenchmarkDecodePushRequestGzip(b *testing.B) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(benchPush(b))
	zw.Close()
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		body, err := wire.Body(bytes.NewReader(data), "gzip")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := wire.DecodePushRequest(body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*wire.MaxMutations), "ns/mutation")
}

// benchPage is a pull page of 1000 contacts.
func benchPage() *wire.PullResponse {
	clock := hlc.NewClock(time.Now, 0)
	page := wire.PullResponse{Versions: wire.Current(), Cursor: "c", HasMore: true, Clock: clock.Now()}
	for i := range wire.MaxMutations {
		page.Changes = append(page.Changes, wire.Change{Kind: schema.KindContact, ID: uuid.Must(uuid.NewV7()), Seq: int64(i + 1),
			Fields: json.RawMessage(`{"setting":"street","area_code":"2380","gender":"woman","age_band":"25-29","voided":false}`),
			V:      clock.Now().String()})
	}
	return &page
}

// BenchmarkEncodePullResponse encodes a page of 1000 changes, as the
// server answers a pull.
func BenchmarkEncodePullResponse(b *testing.B) {
	page := benchPage()
	var buf []byte
	for b.Loop() {
		buf = wire.AppendPullResponse(buf[:0], page)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkEncodePullResponseJSON encodes the same page with
// encoding/json, for comparison.
func BenchmarkEncodePullResponseJSON(b *testing.B) {
	page := benchPage()
	for b.Loop() {
		if err := json.NewEncoder(io.Discard).Encode(page); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParsePullResponse reads a page of 1000 changes as the SDK does.
func BenchmarkParsePullResponse(b *testing.B) {
	data := wire.AppendPullResponse(nil, benchPage())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := wire.ParsePullResponse(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParsePullResponseJSON reads the same page with encoding/json,
// for comparison.
func BenchmarkParsePullResponseJSON(b *testing.B) {
	data := wire.AppendPullResponse(nil, benchPage())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var p wire.PullResponse
		if err := json.Unmarshal(data, &p); err != nil {
			b.Fatal(err)
		}
	}
}
