/* Whether this CPU runs AVX2, for the extensions whose loops have a vector
 * path (emu/_hitscan.h, emu/workload/traces/_records.h): each asks once.
 * Off x86-64, or with a compiler other than GCC or Clang, the answer is no
 * and only the portable loops run. */
#ifndef EMU_CPU_H
#define EMU_CPU_H

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
static int emu_cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}
#else
static int emu_cpu_has_avx2(void) { return 0; }
#endif

#endif
