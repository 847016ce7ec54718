/* dlsym_trampoline.S - the exported dlsym.
 *
 * Why this exists: dlsym(RTLD_NEXT, ...) is resolved relative to the *caller's* object, which
 * glibc finds from the return address. An interposer written in C would be that caller. This
 * trampoline jumps (does not call) to the real dlsym for RTLD_NEXT, so the return address on
 * the stack is still the application's, and to vgpu_dlsym_impl (C) for every other handle. It
 * runs no C code for RTLD_NEXT, which sanitizer runtimes use before they are initialised.
 */
#if defined(__x86_64__)
    .text
    .globl dlsym
    .type dlsym, @function
dlsym:
    cmpq $-1, %rdi                      /* RTLD_NEXT */
    jne vgpu_dlsym_impl
    movq vgpu_real_dlsym_fn(%rip), %rax
    testq %rax, %rax
    jz 1f
    jmp *%rax
1:  pushq %rdi
    pushq %rsi
    subq $8, %rsp                       /* keep the stack 16-byte aligned for the call */
    call vgpu_init_real_dlsym
    addq $8, %rsp
    popq %rsi
    popq %rdi
    movq vgpu_real_dlsym_fn(%rip), %rax
    testq %rax, %rax
    jz 2f
    jmp *%rax
2:  xorl %eax, %eax
    ret
    .size dlsym, .-dlsym
    .section .note.GNU-stack, "", @progbits
#elif defined(__aarch64__)
    .text
    .globl dlsym
    .type dlsym, %function
dlsym:
    cmn x0, #1                          /* RTLD_NEXT */
    b.ne vgpu_dlsym_impl
    adrp x16, vgpu_real_dlsym_fn
    ldr x16, [x16, :lo12:vgpu_real_dlsym_fn]
    cbz x16, 1f
    br x16
1:  stp x29, x30, [sp, #-32]!
    mov x29, sp
    stp x0, x1, [sp, #16]
    bl vgpu_init_real_dlsym
    ldp x0, x1, [sp, #16]
    ldp x29, x30, [sp], #32
    adrp x16, vgpu_real_dlsym_fn
    ldr x16, [x16, :lo12:vgpu_real_dlsym_fn]
    cbz x16, 2f
    br x16
2:  mov x0, #0
    ret
    .size dlsym, .-dlsym
    .section .note.GNU-stack, "", %progbits
#else
#error "dlsym_trampoline.S: add this architecture"
#endif
