package pgstore_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/brygga/brygga/sync/wire"
)

// BenchmarkSyncPushInstances measures pushes from many devices at once to
// one server and to three servers' sync on one PostgreSQL database, each
// server with a pool of its own as a process of its own has: in each
// round every device sends a push of 100 new contacts, the devices spread
// over the servers in turn. Besides records/s it reports where the time
// went: the cores the servers' Go used (go-cores, the process's CPU
// time over the rounds' time) and the cores the database's backends of
// the benchmark's database used (db-cores, read from /proc; 0 where that
// cannot be read), and each per record.
func BenchmarkSyncPushInstances(b *testing.B) {
	const devices, batch = 12, 100
	for _, n := range []int{1, 3} {
		b.Run(map[int]string{1: "one", 3: "three"}[n], func(b *testing.B) {
			ctx := context.Background()
			servers, conn, unit, staff, enrol := benchServers(b, n)
			at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
			devs := make([]*benchDevice, devices)
			for i := range devs {
				devs[i] = newBenchDevice(unit, staff, at)
				enrol(devs[i])
			}
			var wall, goCPU, dbCPU time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				reqs := make([]*wire.PushRequest, devices)
				for i, d := range devs {
					reqs[i] = d.push(batch)
				}
				db0 := backendsCPU(ctx, conn)
				cpu0 := processCPU()
				t := time.Now()
				b.StartTimer()
				var wg sync.WaitGroup
				errs := make([]error, devices)
				for i, d := range devs {
					wg.Go(func() { _, errs[i] = servers[i%n].Push(ctx, d.id, reqs[i]) })
				}
				wg.Wait()
				b.StopTimer()
				wall += time.Since(t)
				goCPU += processCPU() - cpu0
				dbCPU += since(db0, backendsCPU(ctx, conn))
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
			}
			records := float64(b.N * devices * batch)
			b.ReportMetric(records/wall.Seconds(), "records/s")
			b.ReportMetric(goCPU.Seconds()/wall.Seconds(), "go-cores")
			b.ReportMetric(dbCPU.Seconds()/wall.Seconds(), "db-cores")
			b.ReportMetric(float64(goCPU.Microseconds())/records, "go-µs/record")
			b.ReportMetric(float64(dbCPU.Microseconds())/records, "db-µs/record")
		})
	}
}

// processCPU returns the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendsCPU returns the CPU time each backend of conn's database has
// used, by process id, as /proc tells it (in clock ticks of 10ms); empty
// where it cannot be read.
func backendsCPU(ctx context.Context, conn *pgx.Conn) map[int]time.Duration {
	out := map[int]time.Duration{}
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		return out
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return out
	}
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/stat")
		if err != nil {
			continue
		}
		// The fields after the command's closing parenthesis: utime and
		// stime are the 12th and 13th.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[int(pid)] = time.Duration(u+st) * 10 * time.Millisecond
	}
	return out
}

// since returns the CPU time the backends of after used since before.
func since(before, after map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, t := range after {
		d += t - before[pid]
	}
	return d
}
