/*
 * init.c — /init of the initramfs that tests/vm/aarch64.sh boots under
 * qemu-system-aarch64: mounts what the tests read (/proc, /sys, /dev,
 * /tmp), brings up the loopback interface for check_net, runs every
 * program in /tests in name order with the environment the automake
 * harness would give it, prints one result line each and powers off.
 * Linked statically: the initramfs holds nothing else.
 */
#define _GNU_SOURCE 1
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void mount_or_say(const char *src, const char *dir, const char *type)
{
    mkdir(dir, 0755);
    if (mount(src, dir, type, 0, NULL) != 0)
        printf("init: mount %s on %s: %s\n", type, dir, strerror(errno));
}

static void loopback_up(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
        printf("init: lo: %s\n", strerror(errno));
    } else {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
            printf("init: lo up: %s\n", strerror(errno));
    }
    if (fd >= 0)
        close(fd);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    mount_or_say("proc", "/proc", "proc");
    mount_or_say("sysfs", "/sys", "sysfs");
    mount_or_say("devtmpfs", "/dev", "devtmpfs");
    mount_or_say("tmpfs", "/tmp", "tmpfs");
    loopback_up();
    /* As under make check, but with room for an emulated machine, which
     * runs the heaviest tests ten or more times slower: the multiplier
     * also stretches the timeouts the tests set themselves. */
    setenv("CK_DEFAULT_TIMEOUT", "60", 1);
    setenv("CK_TIMEOUT_MULTIPLIER", "10", 1);
    setenv("RINGO_TEST_QUICK", "1", 1);
    setenv("TMPDIR", "/tmp", 1);
    setenv("PATH", "/tests", 1);

    struct dirent **names;
    int n = scandir("/tests", &names, NULL, by_name);
    int pass = 0, fail = 0, skip = 0;
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        if (name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "/tests/%s", name);
        printf("init: running %s\n", name);
        pid_t pid = fork();
        if (pid == 0) {
            execl(path, name, (char *)NULL);
            _exit(127);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        const char *what;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
            what = "PASS";
            pass++;
        } else if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
            what = "SKIP";
            skip++;
        } else {
            what = "FAIL";
            fail++;
        }
        printf("%s: %s (%s %d)\n", what, name, WIFEXITED(st) ? "exit" : "signal",
               WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
    printf("init: %d passed, %d failed, %d skipped\n", pass, fail, skip);
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
