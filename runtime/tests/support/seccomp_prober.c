/*
 * seccomp prober: attempts syscalls and prints, one line each, what happened:
 *     <abi> <nr> <label> <ok | errno N | signal N | exit N | timeout>
 * so that two seccomp filters can be compared syscall by syscall.
 *
 * Every attempt runs in its own forked child (a probe may block, exit or be killed), with
 * invalid arguments (-1 everywhere: bad fds, bad pointers, bad flags) so that a call that
 * passes the filter does nothing. Three ABIs: x86_64 (`syscall`), x32 (`syscall` with
 * __X32_SYSCALL_BIT) and i386 (`int $0x80` from this 64-bit process).
 *
 *     seccomp_prober [--bpf FILE]
 *
 * --bpf FILE installs a filter before probing: FILE holds the seccomp(2) flags (u32, little
 * endian) followed by the struct sock_filter array (8 bytes each). It sets no_new_privs first.
 *
 * Built static by the equivalence test (cc -static -O2 -mno-red-zone), so it runs in a bare rootfs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define X32_BIT 0x40000000L
#define TIMEOUT_MS 1000

enum abi { ABI_X86_64, ABI_X32, ABI_I386 };
static const char *abi_name[] = {"x86_64", "x32", "i386"};

static long raw64(long nr, const long *a) {
	long ret;
	register long r10 __asm__("r10") = a[3];
	register long r8 __asm__("r8") = a[4];
	register long r9 __asm__("r9") = a[5];
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a[0]), "S"(a[1]), "d"(a[2]), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* fork-like calls: the new process must not return into C code (vfork shares our stack). */
static long raw64_forklike(long nr, const long *a) {
	long ret;
	register long r10 __asm__("r10") = a[3];
	register long r8 __asm__("r8") = a[4];
	register long r9 __asm__("r9") = a[5];
	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "mov $231, %%eax\n\t" /* exit_group(0) in the new process */
			 "xor %%edi, %%edi\n\t"
			 "syscall\n\t"
			 "1:"
			 : "=a"(ret)
			 : "a"(nr), "D"(a[0]), "S"(a[1]), "d"(a[2]), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

/* i386 ABI through int $0x80. `forky`: exit the new process at once if this was a fork. */
static long raw32(long nr, const long *a, int forky) {
	int ret;
	int args[6] = {(int)a[0], (int)a[1], (int)a[2], (int)a[3], (int)a[4], (int)a[5]};
	const int *argp = args;
	register long fork_flag __asm__("r12") = forky;
	/* ebp cannot be an asm operand when frame pointers are in use: save and load it by hand
	 * (the prober is built with -mno-red-zone so the push cannot clobber live data). */
	__asm__ volatile("push %%rbp\n\t"
			 "movl 20(%%rsi), %%ebp\n\t"
			 "movl 0(%%rsi), %%ebx\n\t"
			 "movl 4(%%rsi), %%ecx\n\t"
			 "movl 8(%%rsi), %%edx\n\t"
			 "movl 16(%%rsi), %%edi\n\t"
			 "movl 12(%%rsi), %%esi\n\t"
			 "int $0x80\n\t"
			 "test %%eax, %%eax\n\t"
			 "jnz 1f\n\t"
			 "test %%r12, %%r12\n\t"
			 "jz 1f\n\t"
			 "movl $1, %%eax\n\t" /* i386 exit(0) */
			 "xorl %%ebx, %%ebx\n\t"
			 "int $0x80\n\t"
			 "1:\n\t"
			 "pop %%rbp"
			 : "=a"(ret), "+S"(argp)
			 : "a"(nr), "r"(fork_flag)
			 : "rbx", "rcx", "rdx", "rdi", "memory");
	return ret;
}

static int forklike(enum abi abi, long nr) {
	switch (abi) {
	case ABI_X86_64:
	case ABI_X32:
		return nr == 56 || nr == 57 || nr == 58 || nr == 435;
	case ABI_I386:
		return nr == 2 || nr == 120 || nr == 190 || nr == 435;
	}
	return 0;
}

/* Calls that cannot be made harmless with bad arguments: they are not attempted. */
static int skipped(enum abi abi, long nr) {
	switch (abi) {
	case ABI_X86_64:
		return nr == 15; /* rt_sigreturn: restores a garbage frame */
	case ABI_X32:
		return nr == 513; /* rt_sigreturn */
	case ABI_I386:
		return nr == 119 || nr == 173; /* sigreturn, rt_sigreturn */
	}
	return 1;
}

static void probe(enum abi abi, long nr, const char *label, const long *args) {
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		perror("pipe2");
		exit(2);
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(2);
	}
	if (pid == 0) {
		long ret;
		close(pipefd[0]);
		long number = abi == ABI_X32 ? (nr | X32_BIT) : nr;
		if (abi == ABI_I386)
			ret = raw32(number, args, forklike(abi, nr));
		else
			ret = forklike(abi, nr) ? raw64_forklike(number, args) : raw64(number, args);
		if (abi == ABI_I386)
			ret = (int)ret;
		if (write(pipefd[1], &ret, sizeof ret) != sizeof ret)
			_exit(3);
		_exit(0);
	}
	close(pipefd[1]);
	int status = 0;
	int waited = 0;
	for (int ms = 0; ms < TIMEOUT_MS; ms++) {
		pid_t got = waitpid(pid, &status, WNOHANG);
		if (got == pid) {
			waited = 1;
			break;
		}
		struct timespec tick = {0, 1000000};
		nanosleep(&tick, NULL);
	}
	if (!waited) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	long ret = 0;
	ssize_t got = read(pipefd[0], &ret, sizeof ret);
	close(pipefd[0]);
	printf("%s %ld %s ", abi_name[abi], nr, label);
	if (got == sizeof ret) {
		if (ret < 0 && ret >= -4095)
			printf("errno %ld\n", -ret);
		else
			printf("ok\n");
	} else if (!waited) {
		printf("timeout\n");
	} else if (WIFSIGNALED(status)) {
		printf("signal %d\n", WTERMSIG(status));
	} else {
		printf("exit %d\n", WEXITSTATUS(status));
	}
	fflush(stdout);
}

static void probe_all_numbers(enum abi abi, long last) {
	long args[6] = {-1, -1, -1, -1, -1, -1};
	for (long nr = 0; nr <= last; nr++)
		if (!skipped(abi, nr))
			probe(abi, nr, "-", args);
}

/* Calls whose arguments a typical profile conditions on. */
static void probe_arguments(enum abi abi, long personality, long socket, long clone) {
	static const long personas[] = {0, 8, 0x20000, 0x20008, 0xffffffffL, 1, 0x400000, 0x100000000L};
	char label[64];
	for (size_t i = 0; i < sizeof personas / sizeof *personas; i++) {
		/* personality(0xffffffff) only queries; the others change only the probe child. */
		long args[6] = {personas[i], -1, -1, -1, -1, -1};
		snprintf(label, sizeof label, "personality(%#lx)", personas[i]);
		probe(abi, personality, label, args);
	}
	static const long families[] = {1, 2, 10, 16, 17};
	static const long types[] = {1, 2, 3};
	static const long protocols[] = {0, 9, 15};
	for (size_t f = 0; f < 5; f++)
		for (size_t t = 0; t < 3; t++)
			for (size_t p = 0; p < 3; p++) {
				long args[6] = {families[f], types[t], protocols[p], -1, -1, -1};
				snprintf(label, sizeof label, "socket(%ld,%ld,%ld)", families[f], types[t], protocols[p]);
				probe(abi, socket, label, args);
			}
	/* CLONE_SIGHAND without CLONE_VM is invalid: a clone that passes the filter fails with
	 * EINVAL in the kernel (after the namespace bits were seen by the filter). */
	static const long namespaces[] = {0, 0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000, 0x80};
	for (size_t n = 0; n < sizeof namespaces / sizeof *namespaces; n++) {
		long args[6] = {0x800 | namespaces[n], 0, 0, 0, 0, 0};
		snprintf(label, sizeof label, "clone(%#lx)", args[0]);
		probe(abi, clone, label, args);
	}
}

static void install(const char *path) {
	FILE *file = fopen(path, "rb");
	if (!file) {
		perror(path);
		exit(2);
	}
	static unsigned char buffer[8 * 4096 + 4];
	size_t len = fread(buffer, 1, sizeof buffer, file);
	fclose(file);
	if (len < 12 || (len - 4) % 8 != 0) {
		fprintf(stderr, "%s: not a flags + sock_filter array file\n", path);
		exit(2);
	}
	uint32_t flags;
	memcpy(&flags, buffer, 4);
	struct sock_fprog prog = {.len = (unsigned short)((len - 4) / 8), .filter = (struct sock_filter *)(buffer + 4)};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		perror("PR_SET_NO_NEW_PRIVS");
		exit(2);
	}
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) < 0) {
		perror("seccomp");
		exit(2);
	}
}

int main(int argc, char **argv) {
	if (argc == 3 && strcmp(argv[1], "--bpf") == 0)
		install(argv[2]);
	else if (argc != 1) {
		fprintf(stderr, "usage: %s [--bpf FILE]\n", argv[0]);
		return 2;
	}
	probe_all_numbers(ABI_X86_64, 560);
	probe_all_numbers(ABI_X32, 560);
	probe_all_numbers(ABI_I386, 480);
	probe_arguments(ABI_X86_64, 135, 41, 56);
	probe_arguments(ABI_X32, 135, 41, 56);
	probe_arguments(ABI_I386, 136, 359, 120);
	return 0;
}
