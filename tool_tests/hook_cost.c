/*
 * hook_cost.c - a small emalloc/efree/erealloc loop, to count the
 * instructions zendmm executes outside valgrind and ASan (README,
 * "Valgrind and ASan"):
 *
 *   valgrind --tool=callgrind --callgrind-out-file=cg.out target/tool_tests/hook_cost
 *   callgrind_annotate cg.out | head
 *
 * Callgrind is not memcheck, so zendmm runs its ordinary paths here.
 */
#include <stdio.h>

#include "zendmm_alloc.h"

int main(void)
{
	enum { ROUNDS = 200000, N = 8 };
	static const size_t sizes[N] = {8, 24, 56, 100, 200, 500, 1000, 3000};
	void *p[N];
	size_t sum = 0;

	start_memory_manager();
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < N; i++) {
			p[i] = emalloc(sizes[i]);
			((unsigned char *)p[i])[0] = (unsigned char)i;
		}
		for (int i = 0; i < N; i += 2)
			p[i] = erealloc(p[i], sizes[i] * 2);
		for (int i = 0; i < N; i++) {
			sum += (size_t)((unsigned char *)p[i])[0];
			efree(p[i]);
		}
	}
	shutdown_memory_manager(1, 1);
	printf("hook_cost: %d rounds (%zu)\n", ROUNDS, sum);
	return 0;
}
