package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/server"
)

// device runs "bryggad device list|retire|revoke": the device list with
// what a manager weighs before acting, and the two ways a device leaves
// service, each confirmed (on a terminal by typing yes, in scripts with
// --yes) after it is said what will happen.
func device(ctx context.Context, cmd string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs, db := newFlags(cmd, stderr)
	id := fs.String("id", "", "device `id`")
	yes := fs.Bool("yes", false, "confirm without asking (for scripts)")
	if err := parse(fs, args); err != nil {
		return err
	}
	s, err := open(ctx, *db, server.Config{})
	if err != nil {
		return err
	}
	defer s.Close()
	if cmd == "device list" {
		return listDevices(ctx, s, stdout)
	}
	devID, err := parseID("id", *id)
	if err != nil || devID == uuid.Nil {
		return fmt.Errorf("%w: --id must be a device id", errUsage)
	}
	d, err := s.Device(ctx, uuid.Nil, devID)
	if err != nil {
		return err
	}
	switch {
	case cmd == "device retire" && d.State == server.StateLost:
		return fmt.Errorf("device %s is revoked as lost or stolen: it stays revoked and cannot be retired", devID)
	case cmd == "device retire" && d.State == server.StateRetired:
		fmt.Fprintln(stdout, "already retired", devID)
		return nil
	case cmd == "device revoke" && d.State == server.StateLost:
		fmt.Fprintln(stdout, "already revoked", devID)
		return nil
	}
	what, verb := server.RetireConsequence(d), "retire"
	if cmd == "device revoke" {
		what, verb = server.RevokeConsequence(d), "revoke"
	}
	fmt.Fprintln(stdout, what)
	if !*yes {
		if err := confirm(stdin, stdout, verb); err != nil {
			return err
		}
	}
	if cmd == "device revoke" {
		err = s.RevokeDevice(ctx, devID, "admin:cli")
	} else {
		err = s.RetireDevice(ctx, devID, "admin:cli")
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%sd %s\n", verb, devID)
	return nil
}

// errNotConfirmed means the admin did not confirm an action.
var errNotConfirmed = errors.New("not confirmed: nothing was changed")

// confirm asks for "yes" on stdin. Standard input that is a file but not a
// terminal (a script's) is not asked: it must give --yes.
func confirm(stdin io.Reader, stdout io.Writer, verb string) error {
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
			return fmt.Errorf("%w (standard input is not a terminal: give --yes to %s)", errNotConfirmed, verb)
		}
	}
	if stdin == nil {
		return fmt.Errorf("%w (give --yes to %s)", errNotConfirmed, verb)
	}
	fmt.Fprintf(stdout, "Type yes to %s it: ", verb)
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if strings.TrimSpace(line) != "yes" {
		return errNotConfirmed
	}
	return nil
}

func listDevices(ctx context.Context, s *server.Server, stdout io.Writer) error {
	devs, err := s.DevicesOf(ctx, uuid.Nil)
	if err != nil {
		return err
	}
	at := func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return t.Format(time.RFC3339)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DEVICE\tUNIT\tSTATE\tLAST PUSH\tLAST PULL\tMUTATIONS\tREJECTED")
	for _, d := range devs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", d.ID, d.UnitID, d.State, at(d.LastPushAt), at(d.LastPullAt), d.Mutations, d.Rejected)
	}
	return w.Flush()
}
