package brygga_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/server"
)

// TestServerKilled kills the server process with SIGKILL again and again
// while tablets push; after every restart each mutation a tablet had been
// told was applied is on the server exactly once, and in the end
// everything is. BRYGGA_LONG=1 kills it thirty times instead of three.
func TestServerKilled(t *testing.T) {
	kills := 3
	if os.Getenv("BRYGGA_LONG") != "" {
		kills = 30
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bryggad")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/brygga/brygga/server/cmd/bryggad").CombinedOutput(); err != nil {
		t.Fatalf("build bryggad: %v\n%s", err, out)
	}
	db := filepath.Join(dir, "server.db")
	srv, err := server.Open(ctx, server.Config{DBPath: db})
	if err != nil {
		t.Fatal(err)
	}
	org, _ := srv.AddOrganisation(ctx, schema.OrgMunicipality, "Östersunds kommun", "23")
	unit, _ := srv.AddUnit(ctx, org.ID, "Fältgruppen", "2380")
	staff, _ := srv.AddStaff(ctx, unit.ID, schema.RoleOutreachWorker)
	var codes []string
	for range 3 {
		c, _ := srv.NewEnrolCode(ctx, unit.ID, "test")
		codes = append(codes, c.Code)
	}
	srv.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var proc *exec.Cmd
	start := func() {
		proc = exec.Command(bin, "serve", "--db", db, "--addr", addr)
		if err := proc.Start(); err != nil {
			t.Fatal(err)
		}
		for range 200 {
			if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
				resp.Body.Close()
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
		t.Fatal("bryggad did not come up")
	}
	start()
	t.Cleanup(func() { proc.Process.Kill(); proc.Wait() })

	devices := make([]*brygga.Client, len(codes))
	for i, code := range codes {
		c, err := brygga.Open(ctx, filepath.Join(dir, fmt.Sprintf("tablet%d.db", i)), &brygga.Options{PushBatch: 20,
			HTTPClient: &http.Client{Timeout: 5 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Enroll(ctx, "http://"+addr, code); err != nil {
			t.Fatal(err)
		}
		if err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.SetStaff(ctx, staff.ID); err != nil {
			t.Fatal(err)
		}
		devices[i] = c
	}

	var mu sync.Mutex
	var made []uuid.UUID
	acked := make([][]uuid.UUID, len(devices)) // per device: made before its last successful sync
	mine := make([][]uuid.UUID, len(devices))
	rng := rand.New(rand.NewPCG(3, 3))
	for k := range kills {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i, d := range devices {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					var batch []uuid.UUID
					for range 10 {
						c := contact(schema.SettingStreet)
						if err := d.Add(ctx, c); err != nil {
							t.Error(err)
							return
						}
						batch = append(batch, c.ID)
					}
					mu.Lock()
					made = append(made, batch...)
					mine[i] = append(mine[i], batch...)
					mu.Unlock()
					if d.Sync(ctx) == nil {
						// Everything this device made before the sync is
						// acknowledged.
						mu.Lock()
						acked[i] = append([]uuid.UUID{}, mine[i]...)
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Duration(100+rng.IntN(300)) * time.Millisecond)
		proc.Process.Signal(syscall.SIGKILL)
		proc.Wait()
		close(stop)
		wg.Wait()

		mu.Lock()
		var want []uuid.UUID
		for _, a := range acked {
			want = append(want, a...)
		}
		mu.Unlock()
		start()
		missing := countMissing(t, db, want)
		if missing != 0 {
			t.Fatalf("kill %d: %d of %d acknowledged contacts missing after the restart", k+1, missing, len(want))
		}
	}
	for _, d := range devices {
		if err := d.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if missing := countMissing(t, db, made); missing != 0 {
		t.Errorf("%d of %d contacts missing in the end", missing, len(made))
	}
	var rows int
	h, _ := sql.Open("sqlite3", "file:"+db+"?mode=ro&_busy_timeout=5000")
	defer h.Close()
	h.QueryRow(`SELECT count(*) FROM contacts`).Scan(&rows)
	if rows != len(made) {
		t.Errorf("server holds %d contacts, %d were made", rows, len(made))
	}
	t.Logf("%d kills, %d contacts made, all on the server once", kills, len(made))
}

// countMissing returns how many of ids the server's database lacks.
func countMissing(t *testing.T, db string, ids []uuid.UUID) int {
	h, err := sql.Open("sqlite3", "file:"+db+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	missing := 0
	for _, id := range ids {
		var n int
		if err := h.QueryRow(`SELECT count(*) FROM contacts WHERE id = ?`, id.String()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			missing++
		}
	}
	return missing
}
