package replica

import (
	"context"
	"time"
)

// SetPushWaits sets how long a push that overtook another of its device
// waits (see Push) and returns a function that puts the old waits back.
func SetPushWaits(arrival, poll, overtake time.Duration) (restore func()) {
	a, p, o := arrivalWait, arrivalPoll, overtakeWait
	arrivalWait, arrivalPoll, overtakeWait = arrival, poll, overtake
	return func() { arrivalWait, arrivalPoll, overtakeWait = a, p, o }
}

// EchoNotes returns how many change numbers of answered writes the device
// keeps (the echoes table, see noteEchoes).
func (d *Device) EchoNotes(ctx context.Context) (int, error) {
	var n int
	err := d.db.read.QueryRowContext(ctx, `SELECT count(*) FROM echoes`).Scan(&n)
	return n, err
}

// SetPushBodyBytes sets about the most bytes of mutations a push body
// holds (see NextPushBody) and returns a function that puts it back.
func SetPushBodyBytes(n int) (restore func()) {
	old := pushBodyBytes
	pushBodyBytes = n
	return func() { pushBodyBytes = old }
}
