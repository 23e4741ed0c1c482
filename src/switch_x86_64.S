/*
 * switch_x86_64.S — the fiber context switch for x86-64 (System V ABI).
 *
 * ringo__ctx_switch(void **save_sp, void *load_sp) saves the callee-saved
 * registers (rbx, rbp, r12-r15) on the current stack, stores the stack
 * pointer in *save_sp, loads load_sp and restores the same set from there.
 * Caller-saved registers need no saving: the switch is an ordinary call.
 * The frame is
 *
 *      load_sp -> r15 r14 r13 r12 rbx rbp
 *                 return address
 *
 * Floating-point environment: the ABI makes the MXCSR control bits and the
 * x87 control word callee-saved, but saving them (stmxcsr/ldmxcsr, fnstcw/
 * fldcw) cost 9-10 ns of a 23 ns switch here (tests/bench/yield).  As in
 * Go, the floating-point environment (rounding mode, exception masks)
 * belongs to the proc thread and is shared by the goroutines that run on
 * it; ringo(7) says so.  A goroutine that changes it must restore it before
 * it blocks or yields.
 *
 * A new fiber's frame (built by fiber_make in fiber.c) has r12 = the entry
 * function and the return address = ringo__ctx_start, which calls r12 on
 * an aligned stack and traps if it ever returns (the entry never does).
 * ringo__ctx_restart starts an entry the same way on a stack the caller
 * is done with, without a switch (fiber_restart in fiber.h).
 */
	.text
	.globl	ringo__ctx_switch
	.hidden	ringo__ctx_switch
	.type	ringo__ctx_switch, @function
	.p2align 4
ringo__ctx_switch:
	.cfi_startproc
	/* The unwind rules follow every push and pop, so that a backtrace
	 * taken inside the switch (the watchdog's, of a proc thread that lost
	 * its CPU here) finds the return address.  The stack loaded has the
	 * same frame, so the rules hold across the load of %rsp: from there
	 * they describe the goroutine switched to. */
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbp, 0
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r15, 0
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	popq	%r15
	.cfi_adjust_cfa_offset -8
	.cfi_restore r15
	popq	%r14
	.cfi_adjust_cfa_offset -8
	.cfi_restore r14
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore r12
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore rbx
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	.cfi_restore rbp
	ret
	.cfi_endproc
	.size	ringo__ctx_switch, .-ringo__ctx_switch

	.globl	ringo__ctx_start
	.hidden	ringo__ctx_start
	.type	ringo__ctx_start, @function
	.p2align 4
ringo__ctx_start:
	.cfi_startproc
	.cfi_undefined rip	/* the outermost frame of a fiber: stop unwinding */
	xorl	%ebp, %ebp
	callq	*%r12
	ud2
	.cfi_endproc
	.size	ringo__ctx_start, .-ringo__ctx_start

	/* ringo__ctx_restart(void *sp, void (*entry)(void)): start entry on
	 * the stack whose top sp is, abandoning the caller's frames, as a
	 * new fiber's first switch would (fiber.h fiber_restart). */
	.globl	ringo__ctx_restart
	.hidden	ringo__ctx_restart
	.type	ringo__ctx_restart, @function
	.p2align 4
ringo__ctx_restart:
	.cfi_startproc
	movq	%rdi, %rsp
	.cfi_undefined rip	/* from here the outermost frame of a fiber */
	xorl	%ebp, %ebp
	callq	*%rsi
	ud2
	.cfi_endproc
	.size	ringo__ctx_restart, .-ringo__ctx_restart

	.section .note.GNU-stack,"",@progbits
