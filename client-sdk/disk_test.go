package brygga_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	brygga "github.com/brygga/brygga/client-sdk"
	"github.com/brygga/brygga/schema"
)

// TestFullDisk fills the tablet's disk while it records: a child process
// records with its file size limited (RLIMIT_FSIZE, as a full disk does)
// until a write fails. The failure is a clean error; afterwards every
// record that was accepted is in the replica with its queued mutation, and
// all of them sync.
func TestFullDisk(t *testing.T) {
	if path := os.Getenv("BRYGGA_FULL_DISK_REPLICA"); path != "" {
		fullDiskChild(t, path)
		return
	}
	ctx := context.Background()
	r := startRegion(t)
	path := filepath.Join(t.TempDir(), "tablet.db")
	code, _ := r.srv.NewEnrolCode(ctx, r.team.ID, "test")
	c, err := brygga.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Enroll(ctx, r.url(), code.Code); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.SetStaff(ctx, r.teamStaf.ID); err != nil {
		t.Fatal(err)
	}
	c.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestFullDisk$", "-test.v")
	cmd.Env = append(os.Environ(), "BRYGGA_FULL_DISK_REPLICA="+path)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	var added int
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "added "); ok {
			added, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	if added == 0 {
		t.Fatalf("the child recorded nothing:\n%s", out.String())
	}

	c, err = brygga.Open(ctx, path, nil)
	if err != nil {
		t.Fatalf("reopen after the full disk: %v", err)
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	local, _ := c.Contacts(ctx, 1_000_000)
	if st.Pending != added || len(local) != added {
		t.Fatalf("%d records accepted, %d queued, %d in the replica", added, st.Pending, len(local))
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range local {
		if _, err := r.srv.Record(ctx, schema.KindContact, l.ID); err == nil {
			n++
		}
	}
	if n != added {
		t.Errorf("server holds %d of %d", n, added)
	}
	t.Logf("the disk filled after %d records; all of them synced", added)
}

func fullDiskChild(t *testing.T, path string) {
	ctx := context.Background()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	signal.Ignore(syscall.SIGXFSZ) // a write past the limit fails with EFBIG instead
	limit := uint64(fi.Size() + 256<<10)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		t.Fatal(err)
	}
	c, err := brygga.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	added := 0
	var last error
	for range 100_000 {
		if last = c.Add(ctx, contact(schema.SettingStreet)); last != nil {
			break
		}
		added++
	}
	if last == nil {
		t.Fatal("the disk never filled")
	}
	fmt.Printf("added %d (then: %v)\n", added, last)
	c.Close()
}
