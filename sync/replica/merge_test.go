package replica_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
)

var fuzzNodes = []uuid.UUID{
	uuid.MustParse("0190f000-0000-7000-8000-0000000000a1"),
	uuid.MustParse("0190f000-0000-7000-8000-0000000000b2"),
	uuid.MustParse("0190f000-0000-7000-8000-0000000000c3"),
}

// writeFrom makes a write of a referral from fuzz input: which fields it
// sets, their values, its time and its node. Immutable fields, when set,
// have the same value in every write, as they do for one record.
func writeFrom(t *testing.T, data []byte) (*replica.Row, []byte) {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	id := uuid.MustParse("0190f000-0000-7000-8000-000000000001")
	mask := next()
	statuses := schema.ReferralStatusEnum.Codes()
	services := schema.ServiceCategoryEnum.Codes()
	fields := map[string]any{}
	if mask&1 != 0 { // a create: every field
		fields["id"] = id.String()
		fields["unit_id"] = "0190f000-0000-7000-8000-00000000000a"
		fields["device_id"] = fuzzNodes[0].String()
		fields["staff_id"] = "0190f000-0000-7000-8000-0000000000f1"
		fields["occurred_at"] = "2026-03-14T08:00:00.000Z"
		fields["to_unit_id"] = "0190f000-0000-7000-8000-00000000000b"
	}
	if mask&2 != 0 {
		fields["status"] = statuses[int(next())%len(statuses)]
	}
	// A status write carries the reopen count it was made under.
	if mask&4 != 0 || mask&3 == 2 {
		fields["reopened"] = int(next() % 4)
	}
	if mask&8 != 0 {
		fields["service"] = services[int(next())%len(services)]
	}
	if mask&16 != 0 {
		fields["voided"] = next()%2 == 1
	}
	if mask&32 != 0 {
		fields["occurred_at"] = fmt.Sprintf("2026-03-%02dT08:00:00.000Z", 1+next()%28)
	}
	ts := hlc.New(1_700_000_000_000+int64(next()%8), uint16(next()%3))
	node := fuzzNodes[int(next())%len(fuzzNodes)]
	b, _ := json.Marshal(fields)
	w, err := replica.DecodeWrite(schema.KindReferral, id, b, replica.Key(ts, node))
	if err != nil {
		t.Fatalf("write %s: %v", b, err)
	}
	return w, data
}

func join(t *testing.T, a, b *replica.Row) *replica.Row {
	c := a.Clone()
	if _, err := replica.Join(c, b); err != nil {
		t.Fatalf("join: %v", err)
	}
	return c
}

// FuzzJoin checks that merging is a lattice join on any writes: the order,
// grouping and repetition of deliveries do not change the result.
func FuzzJoin(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 3, 2, 3, 1, 0, 1, 1, 6, 5, 1, 0, 2, 1})
	f.Add([]byte{3, 0, 0, 1, 0, 6, 3, 1, 1, 2, 2, 2, 7, 0, 1, 5, 0, 0})
	f.Add([]byte{255, 1, 2, 3, 4, 5, 6, 7, 8, 255, 8, 7, 6, 5, 4, 3, 2, 1, 2, 4, 6, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, data := writeFrom(t, data)
		b, data := writeFrom(t, data)
		c, _ := writeFrom(t, data)

		if ab, ba := join(t, a, b), join(t, b, a); !ab.Equal(ba) {
			t.Fatalf("not commutative:\n a⊔b %v\n b⊔a %v", ab, ba)
		}
		if l, r := join(t, join(t, a, b), c), join(t, a, join(t, b, c)); !l.Equal(r) {
			t.Fatalf("not associative:\n (a⊔b)⊔c %v\n a⊔(b⊔c) %v", l, r)
		}
		if aa := join(t, a, a); !aa.Equal(a) {
			t.Fatalf("not idempotent:\n a⊔a %v\n a %v", aa, a)
		}
		// Joining in what is already joined changes nothing.
		abc := join(t, join(t, a, b), c)
		for _, x := range []*replica.Row{a, b, c} {
			if changed, err := replica.Join(abc.Clone(), x); err != nil || changed {
				t.Fatalf("re-joining a delivered write changed the row (%v)", err)
			}
		}
	})
}

// TestStatusNeverMovesBack joins every ordered pair of status writes made
// under the same reopen count: the result is the further status.
func TestStatusNeverMovesBack(t *testing.T) {
	for _, s1 := range schema.ReferralStatusEnum.Codes() {
		for _, s2 := range schema.ReferralStatusEnum.Codes() {
			id := uuid.MustParse("0190f000-0000-7000-8000-000000000001")
			early, err := replica.DecodeWrite(schema.KindReferral, id, json.RawMessage(`{"status":"`+s1+`","reopened":0}`), replica.Key(hlc.New(1000, 0), fuzzNodes[0]))
			if err != nil {
				t.Fatal(err)
			}
			late, err := replica.DecodeWrite(schema.KindReferral, id, json.RawMessage(`{"status":"`+s2+`","reopened":0}`), replica.Key(hlc.New(2000, 0), fuzzNodes[1]))
			if err != nil {
				t.Fatal(err)
			}
			got := join(t, early, late).Record.(*schema.Referral).Status
			want := schema.ReferralStatus(s2)
			if schema.ReferralStatus(s1).Rank() > schema.ReferralStatus(s2).Rank() {
				want = schema.ReferralStatus(s1)
			}
			if got != want {
				t.Errorf("%s then %s: %s, want %s", s1, s2, got, want)
			}
		}
	}
}

// TestKeyForm checks that Key writes the clock's text form, "@" and the
// node's canonical form, which ParseKey reads back.
func TestKeyForm(t *testing.T) {
	for _, node := range append(fuzzNodes, uuid.Nil, uuid.MustParse("ffffffff-ffff-ffff-ffff-ffffffffffff"), uuid.New()) {
		for _, ts := range []hlc.Timestamp{0, hlc.New(1_700_000_000_000, 7), hlc.New(1<<47-1, 65535)} {
			want := ts.String() + "@" + node.String()
			got := replica.Key(ts, node)
			if got != want {
				t.Fatalf("Key(%v, %v) = %q, want %q", ts, node, got, want)
			}
			gotTS, gotNode, err := replica.ParseKey(got)
			if err != nil || gotTS != ts || gotNode != node {
				t.Fatalf("ParseKey(%q) = %v, %v, %v", got, gotTS, gotNode, err)
			}
		}
	}
}

// TestDecodeWriteFieldOrder checks that a write decodes alike whatever
// order its fields come in (the reader expects the orders writers use:
// column order and the order of the names), that an unknown field is
// refused at any place, and that a decoded create allocates its record,
// its row and its texts, nothing more.
func TestDecodeWriteFieldOrder(t *testing.T) {
	id := uuid.MustParse("0190f000-0000-7000-8000-000000000001")
	members := [][2]string{
		{"id", `"` + id.String() + `"`},
		{"unit_id", `"0190f000-0000-7000-8000-00000000000a"`},
		{"device_id", `"0190f000-0000-7000-8000-0000000000a1"`},
		{"staff_id", `"0190f000-0000-7000-8000-0000000000f1"`},
		{"occurred_at", `"2026-03-14T08:00:00.000Z"`},
		{"voided", `false`},
		{"client_code", `null`},
		{"gender", `"woman"`},
		{"age_band", `"25_29"`},
		{"setting", `"street"`},
		{"area_code", `"2380"`},
		{"substance", `"opioids"`},
	}
	object := func(order []int, extra string, at int) []byte {
		var ms []string
		for n, i := range order {
			if n == at {
				ms = append(ms, extra)
			}
			ms = append(ms, `"`+members[i][0]+`":`+members[i][1])
		}
		return []byte("{" + strings.Join(ms, ",") + "}")
	}
	column := make([]int, len(members))
	for i := range column {
		column[i] = i
	}
	byName := slices.Clone(column)
	slices.SortFunc(byName, func(a, b int) int { return strings.Compare(members[a][0], members[b][0]) })
	reversed := slices.Clone(column)
	slices.Reverse(reversed)
	shuffled := slices.Clone(column)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	key := replica.Key(hlc.New(1_700_000_000_000, 0), fuzzNodes[0])
	want, err := replica.DecodeWrite(schema.KindContact, id, object(column, "", -1), key)
	if err != nil {
		t.Fatal(err)
	}
	for _, order := range [][]int{column, byName, reversed, shuffled, byName[:5], reversed[3:]} {
		fields := object(order, "", -1)
		got, err := replica.DecodeWrite(schema.KindContact, id, fields, key)
		if err != nil {
			t.Fatalf("%s: %v", fields, err)
		}
		if len(order) == len(members) && !got.Equal(want) {
			t.Errorf("%s:\n got %s\nwant %s", fields, got, want)
		}
		for at := range order {
			fields := object(order, `"colour":"blue"`, at)
			_, err := replica.DecodeWrite(schema.KindContact, id, fields, key)
			var fe *schema.FieldError
			if !errors.As(err, &fe) || fe.Field != "colour" || fe.Rule != schema.RuleUnknownField || fe.Message != `contacts have no field "colour"` {
				t.Errorf("%s: %v", fields, err)
			}
		}
	}
	fields := object(byName, "", -1)
	if n := testing.AllocsPerRun(10, func() { replica.DecodeWrite(schema.KindContact, id, fields, key) }); n > 3 {
		t.Errorf("a decoded create allocates %.0f times, want 3", n)
	}
}
