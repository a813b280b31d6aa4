/* header_test.c - compiled once per public header, alone, to prove that each
 * header includes what it needs (dav1d's tests/header_test.c). */
#include SV_HEADER
#include SV_HEADER /* and that it is include-guarded */

int main(void)
{
	return 0;
}
