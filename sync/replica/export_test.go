package replica

import "time"

// SetPushWaits sets how long a push that overtook another of its device
// waits (see Push) and returns a function that puts the old waits back.
func SetPushWaits(arrival, poll, overtake time.Duration) (restore func()) {
	a, p, o := arrivalWait, arrivalPoll, overtakeWait
	arrivalWait, arrivalPoll, overtakeWait = arrival, poll, overtake
	return func() { arrivalWait, arrivalPoll, overtakeWait = a, p, o }
}
