package wire

import (
	"fmt"
	"io"
)

// Codes of a device's lifecycle and of the server's restores. docs/errors.md
// says what each means and what a client does.
const (
	// CodeDeviceRetired answers a pull of a device taken out of service: it
	// may still push what it holds, then it wipes its replica.
	CodeDeviceRetired Code = "device_retired"
	// CodeDeviceUnknown answers a device the server does not know: the
	// server's database was restored from a copy older than the device's
	// enrolment. The device keeps its records and is enrolled again.
	CodeDeviceUnknown Code = "device_unknown"
	// CodeServerRestored answers a pull whose cursor was made by a part
	// of the server database's history the server does not hold, or of a
	// device that has had more of its mutations answered than the server
	// has processed: the database was put back to an older copy without a
	// new epoch (copied by hand). The device sends its records again
	// (HealRequest) and pulls from the start.
	CodeServerRestored Code = "server_restored"
	// CodeConfirmationRequired answers a retirement or revocation sent
	// without {"confirm": true}; its message says what would happen.
	CodeConfirmationRequired Code = "confirmation_required"
)

// HeaderEpoch is the header of every sync answer (push, pull, heal, their
// errors included) that carries the server database's epoch: a random id
// that changes when the database is restored from a copy. A device that
// meets an epoch other than the one it last saw heals the server (see
// HealRequest) and pulls again from the start.
const HeaderEpoch = "Brygga-Epoch"

// MaxHealRows is the most records one heal request carries.
const MaxHealRows = 1000

// HealRequest carries records a device holds, each as a whole with the
// versions of its fields (as a pull page gives them), to a server that may
// have lost them: one restored from an older copy, or the server a
// replica was enrolled again with. The server merges each into its own
// state of the record with the same join as every write; a record it has
// at the same versions is unchanged, so a heal sent twice changes nothing.
type HealRequest struct {
	Versions
	// Epoch is the epoch the device last saw, empty if none.
	Epoch string `json:"epoch,omitempty"`
	// AckedThrough is the highest mutation number the device has had
	// acknowledged: its effects are in the records sent, so a server that
	// has processed fewer of the device's mutations takes it as processed
	// and expects the next number after it.
	AckedThrough int64 `json:"acked_through"`
	// Records are the records, at most MaxHealRows.
	Records []Change `json:"records"`
}

// HealStatus is the outcome of one healed record.
type HealStatus string

// Heal statuses.
const (
	Healed    HealStatus = "healed"    // the server lacked (part of) it and took it
	Unchanged HealStatus = "unchanged" // the server had it at these versions or newer
	Refused   HealStatus = "refused"   // see Error; the device keeps its copy
)

// HealResult is the outcome of one record of a heal, in the request's
// order.
type HealResult struct {
	ID     string     `json:"id"`
	Status HealStatus `json:"status"`
	Error  *Error     `json:"error,omitempty"`
}

// HealResponse answers a HealRequest.
type HealResponse struct {
	Versions
	// Epoch is the server's epoch.
	Epoch string `json:"epoch"`
	// LastSeq is the highest mutation number of the device the server has
	// processed, after the heal.
	LastSeq int64        `json:"last_seq"`
	Results []HealResult `json:"results"`
}

// DecodeHealRequest reads and checks a heal request: versions and size.
// The records are checked one by one, so that one bad record does not
// fail the others.
func DecodeHealRequest(r io.Reader) (*HealRequest, error) {
	var req HealRequest
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := req.Versions.Check(); err != nil {
		return nil, err
	}
	if len(req.Records) > MaxHealRows {
		return nil, errorf(CodeBatchTooLarge, "%d records in one heal, at most %d", len(req.Records), MaxHealRows)
	}
	if req.AckedThrough < 0 {
		return nil, &Error{Code: CodeMalformed, Field: "acked_through", Message: fmt.Sprintf("acked_through %d, want 0 or more", req.AckedThrough)}
	}
	return &req, nil
}

// DecodeHealResponse reads a heal response, for clients.
func DecodeHealResponse(r io.Reader) (*HealResponse, error) {
	var resp HealResponse
	if err := decode(r, &resp); err != nil {
		return nil, err
	}
	return &resp, resp.Versions.Check()
}
