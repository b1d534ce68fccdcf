/* main.c — placeholder until the commands land. */
#include <stdio.h>
int main(void)
{
    puts("fitd");
    return 0;
}
