"""Small cases written for nncas and shipped as text, so ``power`` runs
without any user data.

``CASE3_M`` (MATPOWER): three buses in a triangle, lossless lines
(r = 0, no charging), 150 MW load at bus 3, generators at buses 1 and 2 with
c1 = 0.01 P^2 + 10 P and c2 = 0.02 P^2 + 12 P ($/h, P in MW).  Lossless
means P1 + P2 = 150 at any feasible point, so with no binding limit the
optimum equalizes marginal costs: 0.02 P1 + 10 = 0.04 P2 + 12 gives
P1 = 400/3, P2 = 50/3 and cost 5150/3 = 1716.667 $/h.

``SCOPF3_*`` (GO Challenge 1 files): buses 1, 2, 3 in a triangle (two lines,
one transformer 2-3), 200 MW load at bus 3; cheap generator A at bus 1,
expensive B at bus 2, cheapest C at bus 3 (100 MW max), participation
factors 1, 1, 1; line 1-3 rated 100 MVA.  Without the contingency, A and C
carry the load; losing C makes A and B share 200 MW and A's share overloads
line 1-3 unless the base case moves output from A to B.
"""

from __future__ import annotations

from power.matpower import read_matpower_text
from power.network import Network
from power.psse import GoC1Case, go_c1_case_from_text

CASE3_M = """\
function mpc = case3_nncas
% nncas hand-made 3-bus case; optimum derived in power/cases.py
mpc.version = '2';
mpc.baseMVA = 100;

%% bus data
%	bus_i	type	Pd	Qd	Gs	Bs	area	Vm	Va	baseKV	zone	Vmax	Vmin
mpc.bus = [
	1	3	0	0	0	0	1	1.0	0	138	1	1.1	0.9;
	2	2	0	0	0	0	1	1.0	0	138	1	1.1	0.9;
	3	1	150	0	0	0	1	1.0	0	138	1	1.1	0.9;
];

%% generator data
%	bus	Pg	Qg	Qmax	Qmin	Vg	mBase	status	Pmax	Pmin
mpc.gen = [
	1	100	0	100	-100	1.0	100	1	250	0;
	2	50	0	100	-100	1.0	100	1	250	0;
];

%% branch data
%	fbus	tbus	r	x	b	rateA	rateB	rateC	ratio	angle	status	angmin	angmax
mpc.branch = [
	1	2	0	0.1	0	0	0	0	0	0	1	-30	30;
	1	3	0	0.1	0	0	0	0	0	0	1	-30	30;
	2	3	0	0.1	0	0	0	0	0	0	1	-30	30;
];

%% generator cost data
%	2	startup	shutdown	n	c(n-1)	...	c0
mpc.gencost = [
	2	0	0	3	0.01	10	0;
	2	0	0	3	0.02	12	0;
];
"""

_RAW_SECTION_ENDS = """\
0 / END OF AREA DATA, BEGIN TWO-TERMINAL DC DATA
0 / END OF TWO-TERMINAL DC DATA, BEGIN VOLTAGE SOURCE CONVERTER DATA
0 / END OF VOLTAGE SOURCE CONVERTER DATA, BEGIN IMPEDANCE CORRECTION DATA
0 / END OF IMPEDANCE CORRECTION DATA, BEGIN MULTI-TERMINAL DC DATA
0 / END OF MULTI-TERMINAL DC DATA, BEGIN MULTI-SECTION LINE DATA
0 / END OF MULTI-SECTION LINE DATA, BEGIN ZONE DATA
0 / END OF ZONE DATA, BEGIN INTER-AREA TRANSFER DATA
0 / END OF INTER-AREA TRANSFER DATA, BEGIN OWNER DATA
0 / END OF OWNER DATA, BEGIN FACTS CONTROL DEVICE DATA
0 / END OF FACTS CONTROL DEVICE DATA, BEGIN SWITCHED SHUNT DATA
0 / END OF SWITCHED SHUNT DATA, BEGIN GNE DEVICE DATA
0 / END OF GNE DEVICE DATA, BEGIN INDUCTION MACHINE DATA
0 / END OF INDUCTION MACHINE DATA
Q
"""

SCOPF3_RAW = """\
 0,   100.00, 33, 0, 0, 60.00     / nncas 3-bus SCOPF example
NNCAS THREE-BUS SCOPF EXAMPLE
LOSING THE UNIT AT THE LOAD BUS
    1,'ONE         ', 138.0000,3,   1,   1,   1,1.00000,   0.0000, 1.10000, 0.90000, 1.10000, 0.90000
    2,'TWO         ', 138.0000,2,   1,   1,   1,1.00000,   0.0000, 1.10000, 0.90000, 1.10000, 0.90000
    3,'THREE       ', 138.0000,2,   1,   1,   1,1.00000,   0.0000, 1.10000, 0.90000, 1.10000, 0.90000
0 / END OF BUS DATA, BEGIN LOAD DATA
    3,'1 ',1,   1,   1,   200.000,    20.000,     0.000,     0.000,     0.000,     0.000,   1,1, 0
0 / END OF LOAD DATA, BEGIN FIXED SHUNT DATA
0 / END OF FIXED SHUNT DATA, BEGIN GENERATOR DATA
    1,'A ',   100.000,     0.000,   150.000,  -150.000,1.00000,    0,   300.000,   0.00000,   1.00000,   0.00000,   0.00000,1.00000,1,  100.0,   300.000,     0.000,   1,1.0000
    2,'B ',     0.000,     0.000,   150.000,  -150.000,1.00000,    0,   300.000,   0.00000,   1.00000,   0.00000,   0.00000,1.00000,1,  100.0,   300.000,     0.000,   1,1.0000
    3,'C ',   100.000,     0.000,   150.000,  -150.000,1.00000,    0,   100.000,   0.00000,   1.00000,   0.00000,   0.00000,1.00000,1,  100.0,   100.000,     0.000,   1,1.0000
0 / END OF GENERATOR DATA, BEGIN BRANCH DATA
    1,     2,'1 ',1.00000E-2,1.00000E-1,0.00000E+0, 300.00, 300.00, 300.00,  0.00000,  0.00000,  0.00000,  0.00000, 1,1,   0.00,   1,1.0000
    1,     3,'1 ',1.00000E-2,1.00000E-1,0.00000E+0, 100.00, 100.00, 100.00,  0.00000,  0.00000,  0.00000,  0.00000, 1,1,   0.00,   1,1.0000
0 / END OF BRANCH DATA, BEGIN TRANSFORMER DATA
     2,     3,    0,'1 ',1,1,1,0.00000E-1,0.00000E-1,2,'            ', 1,   1,1.0000,   0,1.0000,   0,1.0000,   0,1.0000,'            '
1.00000E-2,1.00000E-1, 100.00
1.000000,138.000,   0.000, 300.00, 300.00, 300.00, 0,     0,1.100000,0.900000,1.100000,0.900000,33, 0, 0.00000, 0.00000,  0.000
1.000000,138.000
0 / END OF TRANSFORMER DATA, BEGIN AREA DATA
""" + _RAW_SECTION_ENDS

SCOPF3_ROP = """\
 0 / Begin Bus Voltage Constraint data
 0 / End of Bus Voltage Constraint data, begin Adjustable Bus Shunt data
 0 / End of Adjustable Bus Shunt data, begin Bus Load data
 0 / End of Bus Load data, begin Adjustable Bus Load Tables
 0 / End of Adjustable Bus Load Tables, begin Generator Dispatch data
1, A , 1.0, 1
2, B , 1.0, 2
3, C , 1.0, 3
 0 / End of Generator Dispatch data, begin Active Power Dispatch Tables
1, 3.0, 0.0, 1.0, 2, 1, 1
2, 3.0, 0.0, 1.0, 2, 1, 2
3, 1.0, 0.0, 1.0, 2, 1, 3
 0 / End of Active Power Dispatch Tables, begin Generation Reserve data
 0 / End of Generation Reserve data, begin Generation Reactive Capability data
 0 / End of Generation Reactive Capability data, begin Adjustable Branch Reactance data
 0 / End of Adjustable Branch Reactance data, begin Piece-wise Linear Cost Tables
1, LINEAR A, 3
0.0, 0.0
150.0, 1500.0
300.0, 3300.0
2, LINEAR B, 3
0.0, 0.0
150.0, 4500.0
300.0, 9300.0
3, LINEAR C, 3
0.0, 0.0
50.0, 250.0
100.0, 550.0
 0 / End of Piece-wise Linear Cost Tables, begin Piece-wise Linear Quadtratic Cost Tables
 0 / End of Piece-wise Linear Quadtratic Cost Tables, begin Polynomial Cost Tables
 0 / End of Polynomial Cost Tables, begin Period Reserve data
 0 / End of Period Reserve data, begin Branch Flow Constraint data
 0 / End of Branch Flow Constraint data, begin Interface Flow data
 0 / End of Interface Flow data, begin Linear Constraint Equation Dependency data
 0 / End of Linear Constraint Equation Dependency data, begin 2-terminal dc Line Constraint data
 0 / End of 2-terminal dc Line Constraint data
"""

SCOPF3_INL = """\
1, A , 4.0, 3.0, 0.0, 1.0, 0.0
2, B , 4.0, 3.0, 0.0, 1.0, 0.0
3, C , 4.0, 1.0, 0.0, 1.0, 0.0
0
"""

SCOPF3_CON = """\
CONTINGENCY GEN_C
REMOVE UNIT C FROM BUS 3
END
END
"""


def case3() -> Network:
    """The lossless 3-bus MATPOWER case (optimum 1716.667 $/h)."""
    return read_matpower_text(CASE3_M, "power/cases.py:CASE3_M", "case3_nncas")


def scopf3_case() -> GoC1Case:
    """The 3-bus Challenge 1 example with one generator contingency."""
    return go_c1_case_from_text(
        SCOPF3_RAW, SCOPF3_ROP, SCOPF3_INL, SCOPF3_CON,
        names=tuple(f"power/cases.py:SCOPF3_{k}" for k in ("RAW", "ROP", "INL", "CON")),
        case_name="scopf3_nncas")
