package wire_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/brygga/brygga/schema"
	"github.com/brygga/brygga/sync/hlc"
	"github.com/brygga/brygga/sync/wire"
)

// TestAppendPullResponse checks the pull page encoder against
// encoding/json on pages of every shape, strings that need escaping among
// them.
func TestAppendPullResponse(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	clock := hlc.NewClock(time.Now, 0)
	odd := []string{"", "plain", `quote " and \ backslash`, "tab\tnew\nline\r", "<&>", "åäö ÅÄÖ", "\u2028\u2029", "\x00\x1f", "bad \xff utf-8"}
	pages := []*wire.PullResponse{
		{Versions: wire.Current()},
		{Versions: wire.Current(), Changes: []wire.Change{}, Since: "a", Cursor: "b", HasMore: true, Head: 7, Clock: clock.Now()},
	}
	for range 50 {
		p := &wire.PullResponse{Versions: wire.Current(), Since: odd[rng.IntN(len(odd))], Cursor: odd[rng.IntN(len(odd))],
			HasMore: rng.IntN(2) == 0, Head: rng.Int64(), Clock: clock.Now()}
		for range rng.IntN(20) {
			c := wire.Change{Kind: schema.KindContact, ID: uuid.Must(uuid.NewV7()), Seq: rng.Int64N(1 << 40), V: odd[rng.IntN(len(odd))],
				Fields: json.RawMessage(`{"setting":"street","voided":false}`)}
			if rng.IntN(3) == 0 {
				c.Fields = nil
			}
			if n := rng.IntN(4); n > 0 {
				c.CV = map[string]string{}
				for range n {
					c.CV[odd[rng.IntN(len(odd))]] = odd[rng.IntN(len(odd))]
				}
			}
			p.Changes = append(p.Changes, c)
		}
		pages = append(pages, p)
	}
	for i, p := range pages {
		want, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := wire.AppendPullResponse(nil, p); !bytes.Equal(got, want) {
			t.Fatalf("page %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
