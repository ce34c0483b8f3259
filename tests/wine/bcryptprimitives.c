/*
 * Test harness only, never shipped: a stand-in for Windows' bcryptprimitives.dll under Wine 8,
 * which lacks it. Rust's standard library (1.78 and later) gets its random bytes from
 * ProcessPrng in that DLL; real Windows 10 and later always has it. Forwarded to
 * BCryptGenRandom, which Wine implements. scripts/test-cross.sh builds it into the Wine
 * prefix's system32:
 *   x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll bcryptprimitives.c -lbcrypt
 */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    /* BCryptGenRandom takes a ULONG length: feed larger requests in pieces. */
    while (len > 0) {
        ULONG n = len > 0x40000000u ? 0x40000000u : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
