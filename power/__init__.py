"""nncas power: AC-OPF and GO Challenge 1 SCOPF in CasADi symbolics."""
