-- A server finds what each device pulls by the (unit, seq) indexes. A
-- device holds one unit's records and the referrals to it, and never looks
-- them up by unit or sequence number, so on a device these indexes only
-- cost: every row a first sync writes updates them too.
DROP INDEX clients_unit_seq;
DROP INDEX contacts_unit_seq;
DROP INDEX syringe_exchanges_unit_seq;
DROP INDEX naloxone_handouts_unit_seq;
DROP INDEX reversals_unit_seq;
DROP INDEX referrals_unit_seq;
DROP INDEX referrals_to_unit_seq;
