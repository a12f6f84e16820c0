package replica_test

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/replica"
)

var testID = uuid.MustParse("0190f000-0000-7000-8000-000000000002")

// resultWrite is a write of an infection test's result at time ms by node.
func resultWrite(t *testing.T, result string, ms int64, node uuid.UUID) *replica.Row {
	t.Helper()
	w, err := replica.DecodeWrite(schema.KindInfectionTest, testID, json.RawMessage(`{"result":"`+result+`"}`), replica.Key(hlc.New(ms, 0), node))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestResultLeavesPendingOnce joins every ordered pair of result writes,
// from the same device and from two: a known result beats pending
// whichever is later, and of two known results the later wins.
func TestResultLeavesPendingOnce(t *testing.T) {
	for _, r1 := range schema.TestResultEnum.Codes() {
		for _, r2 := range schema.TestResultEnum.Codes() {
			for _, nodes := range [][2]uuid.UUID{{fuzzNodes[0], fuzzNodes[0]}, {fuzzNodes[1], fuzzNodes[0]}} {
				early := resultWrite(t, r1, 1000, nodes[0])
				late := resultWrite(t, r2, 2000, nodes[1])
				want := schema.TestResult(r2)
				if schema.TestResult(r1).Settled() && !want.Settled() {
					want = schema.TestResult(r1)
				}
				for _, got := range []*replica.Row{join(t, early, late), join(t, late, early)} {
					if res := got.Record.(*schema.InfectionTest).Result; res != want {
						t.Errorf("%s then %s: %s, want %s", r1, r2, res, want)
					}
				}
			}
		}
	}
}

// TestResultMergeIsAJoin checks on random writes of a test (creates,
// results, voids, client codes) that merging them is commutative,
// associative and idempotent, and that the merged result is pending only
// if no write set a known one.
func TestResultMergeIsAJoin(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	results := schema.TestResultEnum.Codes()
	write := func() *replica.Row {
		fields := map[string]any{}
		if rng.IntN(3) == 0 {
			fields["id"] = testID.String()
			fields["unit_id"] = "0190f000-0000-7000-8000-00000000000a"
			fields["device_id"] = fuzzNodes[0].String()
			fields["staff_id"] = "0190f000-0000-7000-8000-0000000000f1"
			fields["occurred_at"] = "2026-03-14T08:00:00.000Z"
			fields["contact_id"] = "0190f000-0000-7000-8000-0000000000c1"
			fields["test"] = "hiv"
			fields["outcome"] = "sample_sent"
			fields["result"] = "pending"
		}
		if rng.IntN(2) == 0 {
			fields["result"] = results[rng.IntN(len(results))]
		}
		if rng.IntN(4) == 0 {
			fields["voided"] = rng.IntN(2) == 0
		}
		b, _ := json.Marshal(fields)
		ts := hlc.New(1_700_000_000_000+rng.Int64N(6), uint16(rng.IntN(2)))
		w, err := replica.DecodeWrite(schema.KindInfectionTest, testID, b, replica.Key(ts, fuzzNodes[rng.IntN(len(fuzzNodes))]))
		if err != nil {
			t.Fatalf("write %s: %v", b, err)
		}
		return w
	}
	for range 3000 {
		a, b, c := write(), write(), write()
		if ab, ba := join(t, a, b), join(t, b, a); !ab.Equal(ba) {
			t.Fatalf("not commutative:\n a⊔b %v\n b⊔a %v", ab, ba)
		}
		if l, r := join(t, join(t, a, b), c), join(t, a, join(t, b, c)); !l.Equal(r) {
			t.Fatalf("not associative:\n (a⊔b)⊔c %v\n a⊔(b⊔c) %v", l, r)
		}
		if aa := join(t, a, a); !aa.Equal(a) {
			t.Fatalf("not idempotent:\n a⊔a %v\n a %v", aa, a)
		}
		abc := join(t, join(t, a, b), c)
		settled := false
		for _, x := range []*replica.Row{a, b, c} {
			if x.Key("result") != "" && x.Record.(*schema.InfectionTest).Result.Settled() {
				settled = true
			}
		}
		if got := abc.Record.(*schema.InfectionTest).Result; settled != got.Settled() {
			t.Fatalf("merged result %q, a known result written: %v\n %v\n %v\n %v", got, settled, a, b, c)
		}
	}
}
