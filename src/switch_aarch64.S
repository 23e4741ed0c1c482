/*
 * switch_aarch64.S — the fiber context switch for aarch64 (AAPCS64).
 *
 * ringo__ctx_switch(void **save_sp, void *load_sp) saves the callee-saved
 * registers on the current stack, stores the stack pointer in *save_sp,
 * loads load_sp and restores the same set from there.  AAPCS64 makes
 * x19-x28, the frame pointer x29, the link register x30 (our return
 * address), sp and the low 64 bits of v8-v15 (d8-d15) callee-saved; every
 * other register is caller-saved, and the switch is an ordinary call, so
 * the compiler has already saved whatever of them it needs.  The frame is
 * 160 bytes, a multiple of 16 as sp must always be:
 *
 *      load_sp ->  +0   x19 x20
 *                 +16   x21 x22
 *                 +32   x23 x24
 *                 +48   x25 x26
 *                 +64   x27 x28
 *                 +80   x29 x30 (frame pointer, return address)
 *                 +96   d8  d9
 *                +112   d10 d11
 *                +128   d12 d13
 *                +144   d14 d15
 *
 * Floating-point environment: FPCR (rounding mode, exception trap enables,
 * flush-to-zero) is the aarch64 counterpart of MXCSR and is not saved, for
 * the reason given in switch_x86_64.S: it belongs to the proc thread and
 * is shared by the goroutines that run on it, as in Go; ringo(7) says so.
 * FPSR holds only sticky status flags, which the ABI does not preserve.
 *
 * A new fiber's frame (built by fiber_make in fiber.c) is the same 160
 * bytes at the top of its stack, all zero except x19 = the entry function
 * and x30 = ringo__ctx_start.  The switch's ret lands there with sp = the
 * stack top (16-byte aligned); ringo__ctx_start clears x29 and x30 so the
 * entry's frame record is the last one a frame-pointer walk visits, marks
 * x30 undefined so DWARF unwinders stop too, calls x19 and traps if it
 * ever returns (the entry never does).
 *
 * Branch protection: when the compiler is told to emit BTI landing pads
 * (-mbranch-protection=bti or standard), the functions here get them as
 * well and the object carries the GNU property note, so that linking them
 * in does not silently switch BTI off for the whole library.  Neither
 * function signs x30 (PAC): the saved return address is an ordinary value
 * that only this file reads back.
 */
#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define BTI_C	bti	c
#define GNU_PROPERTY_AARCH64_BTI 1
#else
#define BTI_C
#define GNU_PROPERTY_AARCH64_BTI 0
#endif

	.text
	.globl	ringo__ctx_switch
	.hidden	ringo__ctx_switch
	.type	ringo__ctx_switch, %function
	.p2align 4
ringo__ctx_switch:
	.cfi_startproc
	BTI_C
	/* The unwind rules follow sp and the saved x29 and x30, so that a
	 * backtrace taken inside the switch finds the return address; the
	 * stack loaded has the same frame, so from its load on they describe
	 * the goroutine switched to. */
	sub	sp, sp, #160
	.cfi_adjust_cfa_offset 160
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	.cfi_rel_offset x29, 80
	.cfi_rel_offset x30, 88
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mov	x2, sp
	str	x2, [x0]
	mov	sp, x1
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	.cfi_restore x29
	.cfi_restore x30
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	add	sp, sp, #160
	.cfi_adjust_cfa_offset -160
	ret
	.cfi_endproc
	.size	ringo__ctx_switch, .-ringo__ctx_switch

	.globl	ringo__ctx_start
	.hidden	ringo__ctx_start
	.type	ringo__ctx_start, %function
	.p2align 4
ringo__ctx_start:
	.cfi_startproc
	.cfi_undefined x30	/* the outermost frame of a fiber: stop unwinding */
	/* Entered by the switch's ret, not by a branch-and-link, so it needs
	 * no BTI landing pad. */
	mov	x29, #0
	mov	x30, #0
	blr	x19
	brk	#0x1
	.cfi_endproc
	.size	ringo__ctx_start, .-ringo__ctx_start

	/* ringo__ctx_restart(void *sp, void (*entry)(void)): start entry on
	 * the stack whose top sp is, abandoning the caller's frames, as a
	 * new fiber's first switch would (fiber.h fiber_restart).  Called by
	 * a branch-and-link, so it has a landing pad as the switch has. */
	.globl	ringo__ctx_restart
	.hidden	ringo__ctx_restart
	.type	ringo__ctx_restart, %function
	.p2align 4
ringo__ctx_restart:
	.cfi_startproc
	BTI_C
	mov	sp, x0
	.cfi_undefined x30	/* from here the outermost frame of a fiber */
	mov	x29, #0
	mov	x30, #0
	blr	x1
	brk	#0x1
	.cfi_endproc
	.size	ringo__ctx_restart, .-ringo__ctx_restart

#if GNU_PROPERTY_AARCH64_BTI
	/* NT_GNU_PROPERTY_TYPE_0 with GNU_PROPERTY_AARCH64_FEATURE_1_AND =
	 * BTI: every indirect branch target here has a landing pad. */
	.pushsection .note.gnu.property, "a"
	.p2align 3
	.word	4		/* name size ("GNU\0") */
	.word	16		/* descriptor size */
	.word	5		/* NT_GNU_PROPERTY_TYPE_0 */
	.asciz	"GNU"
	.word	0xc0000000	/* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
	.word	4		/* property size */
	.word	1		/* GNU_PROPERTY_AARCH64_FEATURE_1_BTI */
	.word	0		/* padding to 8 bytes */
	.popsection
#endif

	.section .note.GNU-stack,"",%progbits
