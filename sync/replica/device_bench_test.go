package replica_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
	"github.com/brygga/brygga/sync/wire"
)

// deviceTemplate is a device replica file holding benchDeviceRecords
// records made offline, made once a run and copied for each pass.
var (
	deviceTemplateOnce sync.Once
	deviceTemplate     string
	deviceTemplateCfg  replica.DeviceConfig
	deviceTemplateErr  error
)

const benchDeviceRecords = 20_000

func openDeviceCopy(b *testing.B, clock *testClock) *replica.Device {
	b.Helper()
	deviceTemplateOnce.Do(func() {
		dir, err := os.MkdirTemp("", "brygga-device-bench-")
		if err != nil {
			deviceTemplateErr = err
			return
		}
		w := newWorld(b)
		deviceTemplateCfg = replica.DeviceConfig{ID: newID(b), UnitID: w.unitA, Now: clock.Now}
		deviceTemplate = filepath.Join(dir, "device.db")
		ctx := context.Background()
		d, err := replica.OpenDevice(ctx, deviceTemplate, deviceTemplateCfg)
		if err != nil {
			deviceTemplateErr = err
			return
		}
		defer d.Close()
		var contact uuid.UUID
		at := clock.Now().Add(-time.Hour)
		for i := range benchDeviceRecords {
			h := schema.Header{ID: newID(b), UnitID: w.unitA, DeviceID: d.ID(), StaffID: w.staffA, OccurredAt: at}
			var rec schema.Record = &schema.SyringeExchange{Header: h, ContactID: contact, SyringesOut: 20, NeedlesOut: 20, SyringesReturned: 12}
			if i%2 == 0 {
				contact = h.ID
				rec = &schema.Contact{Header: h, Gender: schema.GenderWoman, AgeBand: schema.Age25to29, Setting: schema.SettingStreet, AreaCode: "2380"}
			}
			if deviceTemplateErr = d.Create(ctx, rec); deviceTemplateErr != nil {
				return
			}
		}
	})
	if deviceTemplateErr != nil {
		b.Fatal(deviceTemplateErr)
	}
	path := filepath.Join(b.TempDir(), "device.db")
	src, err := os.Open(deviceTemplate)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		b.Fatal(err)
	}
	dst.Close()
	cfg := deviceTemplateCfg
	cfg.Now = clock.Now
	d, err := replica.OpenDevice(context.Background(), path, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDeviceOutbox takes a device's outbox of records made offline
// through pushes answered as a server answers them (every mutation applied,
// each with its change number), with no server: the device's own CPU time
// a record of reading its outbox (NextPushBody, as the SDK does) and
// taking the answers
// (AcceptPush), with a context that can be cancelled as an app's is.
func BenchmarkDeviceOutbox(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock := newTestClock()
	var next, accept, cpu time.Duration
	records := 0
	var change int64
	for b.Loop() {
		b.StopTimer()
		d := openDeviceCopy(b, clock)
		b.StartTimer()
		c0 := cpuNow()
		for {
			t0 := time.Now()
			batch, err := d.NextPushBody(ctx, 0, wire.MaxMutations)
			if err != nil {
				b.Fatal(err)
			}
			if batch == nil {
				break
			}
			t1 := time.Now()
			resp := &wire.PushResponse{Versions: wire.Current(), Clock: hlc.New(clock.Now().UnixMilli(), 0), Results: make([]wire.Result, 0, batch.Count)}
			for seq := batch.First; seq <= batch.Last; seq++ {
				change++
				resp.Results = append(resp.Results, wire.Result{Seq: seq, Status: wire.Applied, Change: change})
			}
			resp.LastSeq = batch.Last
			t2 := time.Now()
			if err := d.AcceptPush(ctx, resp); err != nil {
				b.Fatal(err)
			}
			next, accept = next+t1.Sub(t0), accept+time.Since(t2)
		}
		cpu += cpuNow() - c0
		records += benchDeviceRecords
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(records) }
	b.ReportMetric(per(next), "next-ns/record")
	b.ReportMetric(per(accept), "accept-ns/record")
	b.ReportMetric(per(cpu), "cpu-ns/record")
	b.ReportMetric(0, "ns/op")
}
