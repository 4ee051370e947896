/* gdbtarget-c: the static C program the gdb tests debug (tests/tests/gdb.rs), built with
 * musl-gcc -static. Adds to a global through a function that is not inlined, prints the
 * sum and exits with status 5 whatever it is. */
#include <stdio.h>

volatile unsigned long counter;

__attribute__((noinline)) unsigned long bump(unsigned long n)
{
    counter += n;
    return counter;
}

int main(void)
{
    unsigned long start = 41;
    unsigned long sum = bump(start);
    printf("counter %lu\n", sum);
    return 5;
}
