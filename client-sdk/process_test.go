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

// bryggadProcess is bryggad run as a process of its own, on a loopback
// address that stays the same across restarts, over a database with one
// unit, a worker of it and an enrolment code for each tablet.
type bryggadProcess struct {
	t     *testing.T
	bin   string // the bryggad binary
	db    string // the server's database
	addr  string
	staff uuid.UUID
	codes []string
	proc  *exec.Cmd
}

// startBryggadProcess builds bryggad into dir, prepares its database with
// codes for tablets tablets, and starts it; the process is killed when the
// test ends.
func startBryggadProcess(t *testing.T, dir string, tablets int) *bryggadProcess {
	t.Helper()
	ctx := context.Background()
	p := &bryggadProcess{t: t, bin: filepath.Join(dir, "bryggad"), db: filepath.Join(dir, "server.db")}
	if out, err := exec.Command("go", "build", "-o", p.bin, "github.com/brygga/brygga/server/cmd/bryggad").CombinedOutput(); err != nil {
		t.Fatalf("build bryggad: %v\n%s", err, out)
	}
	srv, err := server.Open(ctx, server.Config{DBPath: p.db})
	if err != nil {
		t.Fatal(err)
	}
	org, _ := srv.AddOrganisation(ctx, schema.OrgMunicipality, "Östersunds kommun", "23")
	unit, _ := srv.AddUnit(ctx, org.ID, "Fältgruppen", "2380")
	staff, _ := srv.AddStaff(ctx, unit.ID, schema.RoleOutreachWorker)
	p.staff = staff.ID
	for range tablets {
		c, _ := srv.NewEnrolCode(ctx, unit.ID, "test")
		p.codes = append(p.codes, c.Code)
	}
	srv.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	ln.Close()
	p.start()
	t.Cleanup(func() { p.proc.Process.Kill(); p.proc.Wait() })
	return p
}

// url is where the process serves.
func (p *bryggadProcess) url() string { return "http://" + p.addr }

// start starts the process and waits until it answers.
func (p *bryggadProcess) start() {
	p.t.Helper()
	p.proc = exec.Command(p.bin, "serve", "--db", p.db, "--addr", p.addr)
	if err := p.proc.Start(); err != nil {
		p.t.Fatal(err)
	}
	for range 200 {
		if resp, err := http.Get(p.url() + "/healthz"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	p.t.Fatal("bryggad did not come up")
}

// kill kills the process with SIGKILL and waits for it to end.
func (p *bryggadProcess) kill() {
	p.proc.Process.Signal(syscall.SIGKILL)
	p.proc.Wait()
}

// run runs a command of the bryggad binary other than serve.
func (p *bryggadProcess) run(args ...string) {
	p.t.Helper()
	if out, err := exec.Command(p.bin, args...).CombinedOutput(); err != nil {
		p.t.Fatalf("%s: %v\n%s", args[0], err, out)
	}
}

// tablets opens a tablet in dir for each enrolment code, enrols it, syncs
// it once and sets its worker; each is closed when the test ends.
func (p *bryggadProcess) tablets(dir string) []*brygga.Client {
	p.t.Helper()
	ctx := context.Background()
	devices := make([]*brygga.Client, len(p.codes))
	for i, code := range p.codes {
		c, err := brygga.Open(ctx, filepath.Join(dir, fmt.Sprintf("tablet%d.db", i)), &brygga.Options{PushBatch: 20,
			HTTPClient: &http.Client{Timeout: 5 * time.Second}})
		if err != nil {
			p.t.Fatal(err)
		}
		p.t.Cleanup(func() { c.Close() })
		if err := c.Enroll(ctx, p.url(), code); err != nil {
			p.t.Fatal(err)
		}
		if err := c.Sync(ctx); err != nil {
			p.t.Fatal(err)
		}
		if err := c.SetStaff(ctx, p.staff); err != nil {
			p.t.Fatal(err)
		}
		devices[i] = c
	}
	return devices
}

// untilStopped runs body again and again on a goroutine for each of
// devices, until stop is closed or body returns false, and returns a
// function that waits for them all.
func untilStopped(devices []*brygga.Client, stop <-chan struct{}, body func(i int, d *brygga.Client) bool) (wait func()) {
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
				if !body(i, d) {
					return
				}
			}
		}()
	}
	return wg.Wait
}

// checkContacts checks that the server's database holds each of made once
// and nothing else.
func (p *bryggadProcess) checkContacts(made []uuid.UUID) {
	p.t.Helper()
	if missing := countMissing(p.t, p.db, made); missing != 0 {
		p.t.Errorf("%d of %d contacts missing in the end", missing, len(made))
	}
	var rows int
	h, _ := sql.Open("sqlite3", "file:"+p.db+"?mode=ro&_busy_timeout=5000")
	defer h.Close()
	h.QueryRow(`SELECT count(*) FROM contacts`).Scan(&rows)
	if rows != len(made) {
		p.t.Errorf("server holds %d contacts, %d were made", rows, len(made))
	}
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
