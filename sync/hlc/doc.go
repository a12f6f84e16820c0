// Package hlc implements a hybrid logical clock: timestamps that follow
// physical time where it can be trusted and stay ordered where it cannot.
//
// Outreach tablets run for days without a network and their clocks drift or
// jump, for example back to a factory date after the battery runs flat. A
// Clock never goes backwards: each timestamp it issues is greater than every
// timestamp it issued or observed before, so writes made on one device keep
// their order, and a write made after receiving another device's change
// sorts after that change.
//
// A Timestamp packs Unix milliseconds into its upper 48 bits and a logical
// counter into its lower 16 bits. Its text form is 16 lowercase hex digits,
// so comparing two encoded timestamps as strings gives the same answer as
// comparing them as numbers, which lets databases order by the stored text.
//
// Bounding how far a remote timestamp may run ahead of physical time is a
// matter of server policy and is not done here.
package hlc
