package replica

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
)

// A version key orders the writes of one field. Keys of one field always
// have the same form, and the greater key, compared as strings, wins:
//
//	last writer wins  <hlc>@<node>                   16 hex digits, then the writing device's id
//	referral status   <epoch>.<rank>.<hlc>@<node>    epoch 8 hex digits, rank 1 digit
//	reopen counter    <count>.<hlc>@<node>           count 8 hex digits
//	test result       <settled>.<hlc>@<node>         settled 1 digit: 0 none or pending, 1 known
//
// The hybrid logical clock's encoding sorts as its value does, so the
// string order is the order of time; the node id breaks ties between
// devices. A status's key puts the reopen count it was written under and
// the status's rank in the lifecycle before time: within one reopening the
// furthest status wins however late it arrives, and a reopening beats every
// status before it. A test result's key puts whether the result is settled
// before time: a known result beats pending whatever their order, and of
// two known results the later write wins.

// Key returns the last-writer-wins key of a write at ts by node.
func Key(ts hlc.Timestamp, node uuid.UUID) string {
	// Built in one buffer: every mutation a push applies takes a key.
	var buf [64]byte
	b, _ := ts.AppendText(buf[:0])
	b = append(b, '@')
	var id [36]byte
	hex.Encode(id[0:8], node[0:4])
	id[8] = '-'
	hex.Encode(id[9:13], node[4:6])
	id[13] = '-'
	hex.Encode(id[14:18], node[6:8])
	id[18] = '-'
	hex.Encode(id[19:23], node[8:10])
	id[23] = '-'
	hex.Encode(id[24:], node[10:])
	return string(append(b, id[:]...))
}

// fieldKey returns the key of a write of field f at the plain key base.
// epoch is the reopen count the write was made under (referrals only).
func fieldKey(f schema.Field, base string, epoch int) string {
	switch f.Merge {
	case schema.MergeStatus:
		rank := schema.ReferralStatus(f.SQLValue().(string)).Rank()
		return fmt.Sprintf("%08x.%d.%s", uint32(epoch), max(rank, 0), base)
	case schema.MergeCounter:
		n, _ := f.SQLValue().(int64)
		return fmt.Sprintf("%08x.%s", uint32(n), base)
	case schema.MergeResult:
		v, _ := f.SQLValue().(string)
		if schema.TestResult(v).Settled() {
			return "1." + base
		}
		return "0." + base
	}
	return base
}

// ParseKey checks that s is a last-writer-wins key and returns its parts.
func ParseKey(s string) (hlc.Timestamp, uuid.UUID, error) {
	ts, node, ok := strings.Cut(s, "@")
	if !ok {
		return 0, uuid.Nil, fmt.Errorf("version %q: want <hlc>@<node>", s)
	}
	t, err := hlc.Parse(ts)
	if err != nil {
		return 0, uuid.Nil, fmt.Errorf("version %q: %w", s, err)
	}
	id, err := uuid.Parse(node)
	if err != nil || len(node) != 36 {
		return 0, uuid.Nil, fmt.Errorf("version %q: bad node id", s)
	}
	return t, id, nil
}

// checkFieldKey checks the form of a key of field f as it comes from a
// pull.
func checkFieldKey(f schema.Field, key string) error {
	rest := key
	switch f.Merge {
	case schema.MergeStatus:
		parts := strings.SplitN(key, ".", 3)
		if len(parts) != 3 || len(parts[0]) != 8 || len(parts[1]) != 1 || !isHex(parts[0]) || parts[1][0] < '0' || parts[1][0] > '9' {
			return fmt.Errorf("version of %s %q: want <epoch>.<rank>.<hlc>@<node>", f.Name, key)
		}
		rest = parts[2]
	case schema.MergeCounter:
		parts := strings.SplitN(key, ".", 2)
		if len(parts) != 2 || len(parts[0]) != 8 || !isHex(parts[0]) {
			return fmt.Errorf("version of %s %q: want <count>.<hlc>@<node>", f.Name, key)
		}
		rest = parts[1]
	case schema.MergeResult:
		settled, after, ok := strings.Cut(key, ".")
		if !ok || settled != "0" && settled != "1" {
			return fmt.Errorf("version of %s %q: want <settled>.<hlc>@<node>", f.Name, key)
		}
		rest = after
	}
	_, _, err := ParseKey(rest)
	return err
}

func isHex(s string) bool {
	_, err := strconv.ParseUint(s, 16, 64)
	return err == nil && strings.ToLower(s) == s
}
