//go:build amd64 && !race

#include "textflag.h"

// Offsets in walk (walk.go; TestWalkLayout checks them).
#define W_TOP 0
#define W_CHUNKS 8
#define W_NODES 16
#define W_DSTS 24
#define W_OUT 32
#define W_N 40
#define W_ENT 48
#define W_AT 56
#define W_KID 64

// func walkNodes(w *walk) int
//
// w.n is 1..bulkN: each level's loop runs at least once.
// Registers: DI dsts, SI top, R8 chunks, R9 nodes, R10 ent, R11 at,
// R12 n, R13 out, R14 kid (g in Go's register ABI: the call's wrapper
// restores it); CX the lookup's index, DX the kids listed.
TEXT ·walkNodesAsm(SB), NOSPLIT, $0-16
	MOVQ w+0(FP), AX
	MOVQ W_TOP(AX), SI
	MOVQ W_CHUNKS(AX), R8
	MOVQ W_NODES(AX), R9
	MOVQ W_DSTS(AX), DI
	MOVQ W_OUT(AX), R13
	MOVQ W_N(AX), R12
	MOVQ W_ENT(AX), R10
	MOVQ W_AT(AX), R11
	MOVQ W_KID(AX), R14

	// The top-level entries; prefetch each node's first line (a value's
	// entry points into the arena's first 512 KB: a wasted line).
	XORL CX, CX
top:
	MOVL (DI)(CX*4), AX
	MOVL AX, BX
	SHRL $24, BX
	MOVL (SI)(BX*4), BX
	SHLL $8, BX
	SHRL $16, AX
	MOVBLZX AL, AX
	ORL AX, BX
	MOVL (R8)(BX*4), BX
	MOVL BX, (R10)(CX*4)
	ANDL $0x7fffffff, BX
	PREFETCHT0 (R9)(BX*8)
	INCQ CX
	CMPQ CX, R12
	JLT top

	// Where each value is: the run's index is the header's count of runs
	// before the bitmap word, plus the runs started in the word up to the
	// slot, less one. Prefetch it.
	XORL CX, CX
node:
	MOVL (R10)(CX*4), BX
	TESTL BX, BX
	JNS topval
	ANDL $0x7fffffff, BX
	LEAQ (R9)(BX*8), BX		// the node
	MOVL (DI)(CX*4), AX
	SHRL $8, AX
	MOVBLZX AL, AX			// slot c
	MOVL AX, DX
	SHRL $6, DX			// word w
	ANDL $63, AX
	INCL AX				// bits 0..c%64
	BZHIQ AX, (BX)(DX*8), AX
	POPCNTQ AX, AX
	LEAL 16(DX*8), DX
	SHRXQ DX, 32(BX), DX		// header >> (16+8w)
	MOVBLZX DX, DX
	ADDL DX, AX
	LEAQ 38(BX)(AX*2), BX		// values from word 5; AX is the run's index + 1
	MOVQ BX, (R11)(CX*8)
	PREFETCHT0 (BX)
	INCQ CX
	CMPQ CX, R12
	JLT node
	JMP values
topval:
	LEAQ (R10)(CX*4), BX		// the entry's low half
	MOVQ BX, (R11)(CX*8)
	INCQ CX
	CMPQ CX, R12
	JLT node

values:
	// The values; list those in child blocks, without a branch.
	XORL CX, CX
	XORL DX, DX
val:
	MOVQ (R11)(CX*8), BX
	MOVWLZX (BX), AX
	MOVB CX, (R14)(DX*1)
	XORL BX, BX
	CMPL AX, $0xfffc		// valKid
	SETEQ BX
	ADDQ BX, DX
	CMPL AX, $0xffff		// valNone: the node's def
	JEQ def
store:
	MOVW AX, (R13)(CX*2)
	INCQ CX
	CMPQ CX, R12
	JLT val
	MOVQ DX, ret+8(FP)
	RET
def:
	MOVL (R10)(CX*4), AX
	ANDL $0x7fffffff, AX
	MOVWLZX 32(R9)(AX*8), AX
	JMP store
