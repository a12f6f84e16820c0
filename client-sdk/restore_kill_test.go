package brygga_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
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

// TestKilledAndRestored runs bryggad as a process: tablets push while
// bryggad backup copies the database; the server is killed, bryggad
// restore puts the copy in place, and the server is killed again while the
// tablets heal it. In the end every contact made is on the server once.
func TestKilledAndRestored(t *testing.T) {
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
	kill := func() {
		proc.Process.Signal(syscall.SIGKILL)
		proc.Wait()
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
	// work records and syncs on every tablet until stop is closed.
	work := func(stop chan struct{}) *sync.WaitGroup {
		var wg sync.WaitGroup
		for _, d := range devices {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					for range 5 {
						c := contact(schema.SettingStreet)
						if err := d.Add(ctx, c); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						made = append(made, c.ID)
						mu.Unlock()
					}
					d.Sync(ctx) // fails while the server is away
				}
			}()
		}
		return &wg
	}

	stop := make(chan struct{})
	wg := work(stop)
	time.Sleep(200 * time.Millisecond)
	copyPath := filepath.Join(dir, "copy.db")
	if out, err := exec.Command(bin, "backup", "--db", db, "--out", copyPath).CombinedOutput(); err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	time.Sleep(300 * time.Millisecond)
	kill()
	close(stop)
	wg.Wait()
	if out, err := exec.Command(bin, "restore", "--from", copyPath, "--db", db).CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	start()
	// Killed again while the tablets heal it.
	stop = make(chan struct{})
	wg = work(stop)
	time.Sleep(150 * time.Millisecond)
	kill()
	close(stop)
	wg.Wait()
	start()
	for range 2 {
		for _, d := range devices {
			if err := d.Sync(ctx); err != nil {
				t.Fatal(err)
			}
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
	for _, d := range devices {
		if st, _ := d.Status(ctx); st.Pending != 0 || len(st.Rejected) != 0 {
			t.Errorf("status of %s: %+v", d.DeviceID(), st)
		}
	}
	t.Logf("%d contacts made, all on the server once after a restore and two kills", len(made))
}
