/*
 * switch_regs.S — register probes for tests/switch_test.c.
 *
 * unsigned long switch_regcheck(uint64_t seed, void (*fn)(void *), void *arg)
 *
 *   Loads every callee-saved register with seed + k (k = 1, 2, ..., one
 *   value per register), calls fn(arg) and returns a bit mask of the
 *   registers that no longer hold their value afterwards (0: all kept).
 *   fn switches to another fiber, which does the same with its own seed
 *   before switching on, so a register the context switch fails to save
 *   comes back holding another fiber's value.  The compiler cannot hide
 *   such a bug here: unlike C locals, every register is set and checked.
 *   The probe saves and restores the registers for its own caller, as the
 *   ABI requires, on a frame of its own:
 *
 *   x86-64:  [rsp] seed, then r15 r14 r13 r12 rbx rbp, return address.
 *            Mask bits: 0 rbx, 1 rbp, 2 r12, 3 r13, 4 r14, 5 r15.
 *   aarch64: [sp] x29 x30, +16 x19..x28, +96 d8..d15, +160 seed (176 bytes).
 *            Mask bits: 0-9 x19-x28, 10 x29, 11-18 d8-d15.
 *
 * void *switch_sp_at_call(void)
 *
 *   The caller's stack pointer at the call instruction, which the ABI
 *   keeps 16-byte aligned on both machines.
 */
#if defined(__x86_64__)

	.text
	.globl	switch_regcheck
	.type	switch_regcheck, @function
	.p2align 4
switch_regcheck:
	.cfi_startproc
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
	pushq	%rdi			/* the seed; rsp is now 16-byte aligned */
	.cfi_adjust_cfa_offset 8
	movq	%rsi, %rax
	leaq	1(%rdi), %rbx
	leaq	2(%rdi), %rbp
	leaq	3(%rdi), %r12
	leaq	4(%rdi), %r13
	leaq	5(%rdi), %r14
	leaq	6(%rdi), %r15
	movq	%rdx, %rdi
	callq	*%rax
	movq	(%rsp), %rdi
	xorl	%eax, %eax
	leaq	1(%rdi), %rcx
	cmpq	%rcx, %rbx
	je	1f
	orl	$1, %eax
1:	leaq	2(%rdi), %rcx
	cmpq	%rcx, %rbp
	je	1f
	orl	$2, %eax
1:	leaq	3(%rdi), %rcx
	cmpq	%rcx, %r12
	je	1f
	orl	$4, %eax
1:	leaq	4(%rdi), %rcx
	cmpq	%rcx, %r13
	je	1f
	orl	$8, %eax
1:	leaq	5(%rdi), %rcx
	cmpq	%rcx, %r14
	je	1f
	orl	$16, %eax
1:	leaq	6(%rdi), %rcx
	cmpq	%rcx, %r15
	je	1f
	orl	$32, %eax
1:	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	popq	%r15
	.cfi_adjust_cfa_offset -8
	popq	%r14
	.cfi_adjust_cfa_offset -8
	popq	%r13
	.cfi_adjust_cfa_offset -8
	popq	%r12
	.cfi_adjust_cfa_offset -8
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	ret
	.cfi_endproc
	.size	switch_regcheck, .-switch_regcheck

	.globl	switch_sp_at_call
	.type	switch_sp_at_call, @function
	.p2align 4
switch_sp_at_call:
	.cfi_startproc
	leaq	8(%rsp), %rax		/* above our return address */
	ret
	.cfi_endproc
	.size	switch_sp_at_call, .-switch_sp_at_call

#elif defined(__aarch64__)

/* CHECK reg, k, bit: set bit in x0 unless reg == seed (x9) + k. */
	.macro	CHECKX reg, k, bit
	add	x10, x9, #\k
	cmp	\reg, x10
	cset	x11, ne
	orr	x0, x0, x11, lsl #\bit
	.endm
	.macro	CHECKD reg, k, bit
	fmov	x12, \reg
	CHECKX	x12, \k, \bit
	.endm
	.macro	SETD reg, k
	add	x10, x0, #\k
	fmov	\reg, x10
	.endm

	.text
	.globl	switch_regcheck
	.type	switch_regcheck, %function
	.p2align 4
switch_regcheck:
	.cfi_startproc
	stp	x29, x30, [sp, #-176]!
	.cfi_def_cfa_offset 176
	.cfi_offset x29, -176
	.cfi_offset x30, -168
	stp	x19, x20, [sp, #16]
	stp	x21, x22, [sp, #32]
	stp	x23, x24, [sp, #48]
	stp	x25, x26, [sp, #64]
	stp	x27, x28, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	.cfi_offset x19, -160
	.cfi_offset x20, -152
	.cfi_offset x21, -144
	.cfi_offset x22, -136
	.cfi_offset x23, -128
	.cfi_offset x24, -120
	.cfi_offset x25, -112
	.cfi_offset x26, -104
	.cfi_offset x27, -96
	.cfi_offset x28, -88
	.cfi_offset d8, -80
	.cfi_offset d9, -72
	.cfi_offset d10, -64
	.cfi_offset d11, -56
	.cfi_offset d12, -48
	.cfi_offset d13, -40
	.cfi_offset d14, -32
	.cfi_offset d15, -24
	str	x0, [sp, #160]
	add	x19, x0, #1
	add	x20, x0, #2
	add	x21, x0, #3
	add	x22, x0, #4
	add	x23, x0, #5
	add	x24, x0, #6
	add	x25, x0, #7
	add	x26, x0, #8
	add	x27, x0, #9
	add	x28, x0, #10
	add	x29, x0, #11
	SETD	d8, 12
	SETD	d9, 13
	SETD	d10, 14
	SETD	d11, 15
	SETD	d12, 16
	SETD	d13, 17
	SETD	d14, 18
	SETD	d15, 19
	mov	x0, x2
	blr	x1
	ldr	x9, [sp, #160]
	mov	x0, #0
	CHECKX	x19, 1, 0
	CHECKX	x20, 2, 1
	CHECKX	x21, 3, 2
	CHECKX	x22, 4, 3
	CHECKX	x23, 5, 4
	CHECKX	x24, 6, 5
	CHECKX	x25, 7, 6
	CHECKX	x26, 8, 7
	CHECKX	x27, 9, 8
	CHECKX	x28, 10, 9
	CHECKX	x29, 11, 10
	CHECKD	d8, 12, 11
	CHECKD	d9, 13, 12
	CHECKD	d10, 14, 13
	CHECKD	d11, 15, 14
	CHECKD	d12, 16, 15
	CHECKD	d13, 17, 16
	CHECKD	d14, 18, 17
	CHECKD	d15, 19, 18
	ldp	x19, x20, [sp, #16]
	ldp	x21, x22, [sp, #32]
	ldp	x23, x24, [sp, #48]
	ldp	x25, x26, [sp, #64]
	ldp	x27, x28, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	ldp	x29, x30, [sp], #176
	.cfi_def_cfa_offset 0
	ret
	.cfi_endproc
	.size	switch_regcheck, .-switch_regcheck

	.globl	switch_sp_at_call
	.type	switch_sp_at_call, %function
	.p2align 4
switch_sp_at_call:
	.cfi_startproc
	mov	x0, sp			/* a leaf: sp is the caller's */
	ret
	.cfi_endproc
	.size	switch_sp_at_call, .-switch_sp_at_call

#endif /* other machines: no probe, and switch_test.c skips */

	.section .note.GNU-stack,"",%progbits
