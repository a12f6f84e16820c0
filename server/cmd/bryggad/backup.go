package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/brygga/brygga/server"
	"github.com/brygga/brygga/server/pgstore"
	"github.com/brygga/brygga/server/sqlitestore"
	"github.com/brygga/brygga/sync/replica"
)

// errServing means a server holds the database.
var errServing = errors.New("a server is serving the database: stop it first")

// backup runs "bryggad backup --db F --out F2": a consistent copy of the
// database while the server runs, with an epoch of its own, so that
// putting it in place is a restore the tablets notice.
func backup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("backup", stderr)
	out := fs.String("out", "", "the copy's `file`, which must not exist")
	if err := parse(fs, args); err != nil {
		return err
	}
	if pgstore.IsURL(*db) {
		return pgstore.ErrBackup
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required", errUsage)
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("backup: %s exists: give a new file", *out)
	}
	if _, err := os.Stat(*db); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	s, err := open(ctx, *db, server.Config{})
	if err != nil {
		return err
	}
	defer s.Close()
	epoch, err := s.Backup(ctx, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "copied %s to %s at %s (epoch %s)\n", *db, *out, time.Now().UTC().Format(time.RFC3339), epoch)
	fmt.Fprintln(stdout, "The copy holds the signing keys and every record: encrypt it and guard it like the server.")
	return nil
}

// restore runs "bryggad restore --from F2 --db F": it puts a copy in
// place of the database, with a new epoch, refusing while a server holds
// the database. The database it replaces is kept beside it. It prints the
// revocations and retirements made after the copy, which the copy lacks.
func restore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, db := newFlags("restore", stderr)
	from := fs.String("from", "", "the copy `file` to restore (made by bryggad backup)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if pgstore.IsURL(*db) {
		return pgstore.ErrBackup
	}
	if *from == "" {
		return fmt.Errorf("%w: --from is required", errUsage)
	}
	if err := checkCopy(ctx, *from); err != nil {
		return err
	}
	if a, err := os.Stat(*from); err == nil {
		if b, err := os.Stat(*db); err == nil && os.SameFile(a, b) {
			return fmt.Errorf("%w: --from and --db are the same file", errUsage)
		}
	}
	release, err := lockDB(*db)
	if err != nil {
		return err
	}
	defer release()
	copied, err := replica.BackupTime(ctx, *from)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	now := time.Now()
	kept := ""
	if _, err := os.Stat(*db); err == nil {
		if err := printLost(ctx, *db, copied, stdout); err != nil {
			return err
		}
		kept = fmt.Sprintf("%s.replaced-%s", *db, now.UTC().Format("20060102T150405Z"))
		if err := os.Rename(*db, kept); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	for _, p := range []string{*db + "-wal", *db + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("restore: %w", err)
		}
	}
	tmp := *db + ".restoring"
	if err := copyFile(tmp, *from); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	epoch, err := replica.NewEpoch(ctx, tmp, "restored_at", now)
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(tmp, *db); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(stdout, "restored %s from %s (epoch %s)\n", *db, *from, epoch)
	if kept != "" {
		fmt.Fprintf(stdout, "the database it replaced is kept as %s\n", kept)
	}
	fmt.Fprintln(stdout, "Tablets notice the restore at their next sync and send again the records the copy lacks.")
	fmt.Fprintln(stdout, "Tablets enrolled after the copy was made are unknown to it: enrol them again with new codes (their records are kept and sent).")
	fmt.Fprintln(stdout, "Accounts, units, staff and signing keys made after the copy are not in it: make them again, and rotate the signing key (bryggad key rotate).")
	return nil
}

// checkCopy checks that path is a whole Brygga server database.
func checkCopy(ctx context.Context, path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := sqlitestore.CheckCopy(ctx, path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// printLost prints the revocations and retirements the database at path
// holds that are newer than the copy (all of them if the copy's time is
// unknown): the restore undoes them.
func printLost(ctx context.Context, path string, copied time.Time, stdout io.Writer) error {
	s, err := open(ctx, path, server.Config{})
	if err != nil {
		return fmt.Errorf("restore: the database being replaced: %w", err)
	}
	defer s.Close()
	var lost []server.AuditEntry
	for before := int64(0); ; {
		entries, err := s.Audit(ctx, before, 1000)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if (e.Action == "revoke" || e.Action == "retire") && e.Outcome == "ok" && e.At.After(copied) {
				lost = append(lost, e)
			}
		}
		if len(entries) < 1000 || entries[len(entries)-1].At.Before(copied) {
			break
		}
		before = entries[len(entries)-1].ID
	}
	if len(lost) == 0 {
		return nil
	}
	fmt.Fprintln(stdout, "The copy lacks these revocations and retirements: repeat them once the server runs again:")
	for i := len(lost) - 1; i >= 0; i-- {
		e := lost[i]
		cmd := "revoke"
		if e.Action == "retire" {
			cmd = "retire"
		}
		fmt.Fprintf(stdout, "  %s %s by %s: bryggad device %s --db %s --id %s\n", e.At.Format(time.RFC3339), e.Action, e.Actor, cmd, path, trimDevice(e.Target))
	}
	return nil
}

func trimDevice(target string) string {
	if len(target) > len("device:") && target[:len("device:")] == "device:" {
		return target[len("device:"):]
	}
	return target
}

// copyFile copies src to dst, a new file, and syncs it to disk.
func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}
