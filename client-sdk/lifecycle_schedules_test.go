package brygga_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/sync/replica"
)

// lifeDevice is a tablet of a lifecycle schedule and what the schedule
// did to it.
type lifeDevice struct {
	c       *brygga.Client
	retired bool // a manager retired it
	lost    bool // a manager revoked it as lost
	wiped   bool // its replica is gone (retired and done, or lost)
	unknown bool // a restored server does not know it, and it was not enrolled again
}

// lifeCopy is a copy of the server database the schedule made: with
// bryggad backup's epoch, or a file copy that keeps the epoch.
type lifeCopy struct {
	path     string
	byHand   bool
	contacts map[uuid.UUID]bool // what it holds
}

// lifeResult is what one lifecycle schedule did.
type lifeResult struct {
	scheduleCounts
	retired, lost, backups, restores, byHand, reenrolled int
	lostToRestore                                        int // records whose every copy was wiped before a restore to a copy without them
}

// serverContacts returns the ids of the contacts the server's database at
// path holds.
func serverContacts(t *testing.T, path string) map[uuid.UUID]int {
	t.Helper()
	h, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rows, err := h.Query(`SELECT id FROM contacts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[uuid.UUID]int{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out[uuid.MustParse(s)]++
	}
	return out
}

// runLifecycleSchedule runs one seeded schedule: tablets of one unit, some
// with clocks days off, record offline and sync through the fault proxy
// (cut connections, lost answers, delays, duplicates, replays, cancelled
// contexts), while the schedule also retires tablets, revokes one as lost,
// backs the server up (with bryggad backup's new epoch, or by copying the
// file, which keeps the epoch), restores it from any earlier copy (the way
// the copy was made) and repeats the retirements and revocation the copy
// lacks, as bryggad restore asks. A tablet a restored server does not know
// is enrolled again with a new code. Then the faults stop and it checks:
// every tablet not lost syncs to completion (0 stranded: an active one
// syncs, a retired one sends everything and is wiped), every record a
// tablet not lost made is on the server exactly once (retired tablets'
// included), every active tablet holds exactly what the server holds, and
// no record of the lost tablet is on the server twice.
func runLifecycleSchedule(t *testing.T, seed uint64, devices, steps int) lifeResult {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 11))
	r := startRegion(t)
	dir := t.TempDir()
	proxy, via, stopProxy := startFaultProxy(t, r.url(), seed)
	defer stopProxy()
	res := lifeResult{scheduleCounts: scheduleCounts{devices: devices}}
	made := map[uuid.UUID]int{} // record -> the tablet that made it
	tablets := make([]*lifeDevice, devices)
	for i := range tablets {
		tablets[i] = &lifeDevice{c: r.deviceWith(via, r.team, r.teamStaf, scheduleOptions(rng))}
	}
	// reenrol enrols a tablet the server does not know again, with a new
	// code, through the faults (retrying until it is enrolled).
	reenrol := func(d *lifeDevice) {
		code, err := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
		if err != nil {
			t.Fatal(err)
		}
		for try := 0; ; try++ {
			cctx, cancel := maybeCancelled(ctx, rng, 4)
			err := d.c.Reenroll(cctx, code.Code)
			cancel()
			if err == nil {
				break
			}
			if try > 200 {
				t.Fatalf("seed %d: Reenroll does not succeed: %v", seed, err)
			}
		}
		d.c.SetStaff(ctx, r.teamStaf.ID)
		d.unknown = false
		res.reenrolled++
		if d.retired { // the manager's decision stands for the tablet
			r.srv.RetireDevice(ctx, d.c.DeviceID(), "test")
		}
	}
	// syncOnce syncs a tablet and notes what the answer says of it.
	syncOnce := func(d *lifeDevice, cctx context.Context) error {
		err := d.c.Sync(cctx)
		switch {
		case errors.Is(err, brygga.ErrRetired):
			if !d.retired {
				t.Errorf("seed %d: a tablet not retired was told it was", seed)
			}
			d.wiped = true
		case errors.Is(err, brygga.ErrRevoked):
			if !d.lost {
				t.Errorf("seed %d: a tablet not lost was revoked: %v", seed, err)
			}
			d.wiped = true
		case errors.Is(err, brygga.ErrUnknownDevice):
			d.unknown = true
		}
		return err
	}
	var copies []*lifeCopy
	trace := os.Getenv("BRYGGA_LIFECYCLE_TRACE") != ""
	proxy.set(true)
	for step := range steps {
		d := tablets[rng.IntN(len(tablets))]
		op := rng.IntN(20)
		if trace {
			st, _ := d.c.Status(ctx)
			t.Logf("step %d: op %d on tablet %d (%+v) pending %d", step, op, indexOf(tablets, d), *d, st.Pending)
		}
		switch {
		case op == 6 && len(tablets) < devices+2: // a tablet enrolled now, through the faults
			code, err := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
			if err != nil {
				t.Fatal(err)
			}
			c, err := brygga.Open(ctx, filepath.Join(dir, fmt.Sprintf("late-%d.db", step)), &brygga.Options{HTTPClient: &http.Client{Timeout: 10 * time.Second}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for try := 0; !c.Enrolled(); try++ {
				if try > 200 {
					t.Fatalf("seed %d: enrolment does not succeed: %v", seed, err)
				}
				cctx, cancel := maybeCancelled(ctx, rng, 4)
				err = c.Enroll(cctx, via, code.Code)
				cancel()
			}
			// Its first sync brings the unit's staff, through the faults.
			for try := 0; c.Sync(ctx) != nil; try++ {
				if try > 200 {
					t.Fatalf("seed %d: a new tablet's first sync does not succeed", seed)
				}
			}
			if err := c.SetStaff(ctx, r.teamStaf.ID); err != nil {
				t.Fatal(err)
			}
			tablets = append(tablets, &lifeDevice{c: c})
			res.devices++
		case op < 7: // record
			if d.wiped {
				continue
			}
			for range 1 + rng.IntN(3) {
				rec := contact(schema.SettingStreet)
				err := d.c.Add(ctx, rec)
				if errors.Is(err, brygga.ErrSealed) {
					break
				}
				if err != nil {
					t.Fatalf("seed %d: record: %v", seed, err)
				}
				made[rec.ID] = indexOf(tablets, d)
				res.records++
			}
		case op < 14: // sync through the faults
			if d.wiped {
				continue
			}
			if d.unknown && !d.lost {
				reenrol(d)
			}
			cctx, cancel := maybeCancelled(ctx, rng, 4)
			err := syncOnce(d, cctx)
			cancel()
			if trace {
				t.Logf("  sync: %v", err)
			}
			res.syncs++
			if err != nil {
				res.failed++
			}
		case op == 14: // retire
			if d.retired || d.lost || d.unknown || d.wiped || res.retired >= devices-2 {
				continue
			}
			if err := r.srv.RetireDevice(ctx, d.c.DeviceID(), "test"); errors.Is(err, server.ErrNotFound) {
				continue // enrolled after the copy the server was restored to: it will learn so
			} else if err != nil {
				t.Fatalf("seed %d: retire: %v", seed, err)
			}
			d.retired = true
			res.retired++
		case op == 15: // revoke as lost, one tablet at most
			if res.lost > 0 || d.unknown || d.wiped {
				continue
			}
			if err := r.srv.RevokeDevice(ctx, d.c.DeviceID(), "test"); errors.Is(err, replica.ErrUnknownDevice) {
				continue // enrolled after the copy the server was restored to
			} else if err != nil {
				t.Fatalf("seed %d: revoke: %v", seed, err)
			}
			d.lost = true
			res.lost++
		case op < 18: // a copy
			proxy.late.Wait()
			cp := &lifeCopy{path: filepath.Join(dir, fmt.Sprintf("copy-%d.db", step)), byHand: rng.IntN(2) == 0}
			if cp.byHand {
				r.snapshot(cp.path)
			} else if _, err := r.srv.Backup(ctx, cp.path); err != nil {
				t.Fatal(err)
			}
			cp.contacts = map[uuid.UUID]bool{}
			for id := range serverContacts(t, cp.path) {
				cp.contacts[id] = true
			}
			copies = append(copies, cp)
			res.backups++
		default: // a restore from any earlier copy
			if len(copies) == 0 {
				continue
			}
			proxy.late.Wait()
			cp := copies[rng.IntN(len(copies))]
			// What no tablet will bring back: records missing from the
			// copy whose every holder is wiped (the documented limit of
			// a restore), counted apart.
			for id, i := range made {
				if cp.contacts[id] || tablets[i].lost {
					continue
				}
				held := false
				for _, o := range tablets {
					if o.wiped || o.lost {
						continue
					}
					if _, err := o.c.Get(ctx, schema.KindContact, id); !errors.Is(err, brygga.ErrNotFound) {
						held = true // or unreadable: still expected
						break
					}
				}
				if !held {
					if !tablets[i].wiped {
						t.Errorf("seed %d: contact %s of tablet %d, which is not wiped, is on no tablet", seed, id, i)
					}
					delete(made, id)
					res.lostToRestore++
				}
			}
			if trace {
				t.Logf("  restore to %s (by hand %v)", cp.path, cp.byHand)
			}
			if cp.byHand {
				r.restoreByHand(cp.path)
				res.byHand++
			} else {
				r.restore(cp.path)
			}
			res.restores++
			// The retirements and the revocation the copy lacks are made
			// again, as bryggad restore asks.
			for _, o := range tablets {
				if o.wiped || !o.c.Enrolled() {
					continue
				}
				if o.lost {
					r.srv.RevokeDevice(ctx, o.c.DeviceID(), "test")
				} else if o.retired {
					r.srv.RetireDevice(ctx, o.c.DeviceID(), "test")
				}
			}
		}
	}
	proxy.set(false)
	proxy.late.Wait()
	proxy.mu.Lock()
	res.counts = proxy.counts
	proxy.mu.Unlock()

	// The faults have stopped: every tablet not lost syncs to completion.
	for round := range 3 {
		for i, d := range tablets {
			if d.wiped || d.lost {
				continue
			}
			if d.unknown {
				reenrol(d)
			}
			err := syncOnce(d, ctx)
			if errors.Is(err, brygga.ErrUnknownDevice) {
				reenrol(d)
				err = syncOnce(d, ctx)
			}
			if err != nil && !(d.retired && errors.Is(err, brygga.ErrRetired)) {
				t.Errorf("seed %d: tablet %d stranded (round %d, retired %v): %v", seed, i, round, d.retired, err)
			}
		}
	}
	for i, d := range tablets {
		if d.retired && !d.lost && !d.wiped {
			t.Errorf("seed %d: retired tablet %d was not wiped", seed, i)
		}
		if d.lost && !d.wiped {
			// A lost tablet is wiped at its next contact; one a restored
			// server does not know stays until a manager enrols it again,
			// which no manager does for a lost tablet.
			if err := syncOnce(d, ctx); !errors.Is(err, brygga.ErrRevoked) && !errors.Is(err, brygga.ErrUnknownDevice) {
				t.Errorf("seed %d: the lost tablet syncs: %v", seed, err)
			}
		}
	}

	if trace {
		entries, _ := r.srv.Audit(ctx, 0, 100000)
		for _, e := range entries {
			t.Logf("audit %+v", e)
		}
	}
	onServer := serverContacts(t, r.db)
	for id, n := range onServer {
		if n != 1 {
			t.Errorf("seed %d: contact %s on the server %d times", seed, id, n)
		}
	}
	for id, i := range made {
		if tablets[i].lost {
			continue // pushed before the revocation, or never: at most once, checked above
		}
		if onServer[id] != 1 {
			t.Errorf("seed %d: contact %s of tablet %d (retired %v) on the server %d times", seed, id, i, tablets[i].retired, onServer[id])
		}
	}
	for i, d := range tablets {
		if d.wiped || d.lost {
			continue
		}
		checkHolds(t, seed, i, d.c, onServer)
	}
	return res
}

func indexOf(tablets []*lifeDevice, d *lifeDevice) int {
	for i, o := range tablets {
		if o == d {
			return i
		}
	}
	return -1
}

// TestLifecycleSchedules runs seeded random schedules of tablets recording
// and syncing through network faults and clocks days off while tablets are
// retired, one is revoked as lost and the server is backed up and restored
// both ways (see runLifecycleSchedule). BRYGGA_LIFECYCLE_SCHEDULES sets how
// many run (3 with -short, 8 without); BRYGGA_LIFECYCLE_SEED the first.
func TestLifecycleSchedules(t *testing.T) {
	schedules, devices, steps := 8, 5, 60
	if testing.Short() {
		schedules, devices, steps = 3, 4, 40
	}
	var total lifeResult
	runs := runSeeds(t, schedules, "BRYGGA_LIFECYCLE_SCHEDULES", "BRYGGA_LIFECYCLE_SEED", func(seed uint64) {
		r := runLifecycleSchedule(t, seed, devices, steps)
		total.add(r.scheduleCounts)
		total.retired += r.retired
		total.lost += r.lost
		total.backups += r.backups
		total.restores += r.restores
		total.byHand += r.byHand
		total.reenrolled += r.reenrolled
		total.lostToRestore += r.lostToRestore
	})
	t.Logf("%d schedules, %d tablets, %d records, %d syncs under faults (%d failed); %d retired, %d lost, %d copies, %d restores (%d of a copy made by hand), %d enrolled again; requests: %s; "+
		"stranded 0, lost 0, duplicated 0; records whose every copy was wiped before a restore to a copy without them: %d",
		runs, total.devices, total.records, total.syncs, total.failed, total.retired, total.lost, total.backups, total.restores, total.byHand, total.reenrolled,
		faultSummary(total.counts), total.lostToRestore)
}
