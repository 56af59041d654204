/* A tiny service for the chaos tests, built static so it also runs in a FROM scratch
 * image. `helper serve PORT`: answers every HTTP request with 200 and a body naming its
 * pid, working folder and $GREETING; several instances may share the port (SO_REUSEPORT),
 * like a stray duplicate would. SIGTERM ends it with code 0 (it may be pid 1).
 * HELPER_WORKERS=N: a master/worker server like nginx: the parent forks N workers that
 * serve and itself only waits; HELPER_SPIN=1: workers poll a non-blocking socket, each
 * burning a core (CPU that only the whole process tree shows); HELPER_PIDFILE=PATH: the
 * parent writes its pid there once listening. */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
    if (argc < 3 || strcmp(argv[1], "serve") != 0) {
        fprintf(stderr, "usage: helper serve PORT\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    signal(SIGPIPE, SIG_IGN);
    int port = atoi(argv[2]);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    /* 0.0.0.0 inside a container (published on 127.0.0.1 by docker); loopback otherwise. */
    a.sin_addr.s_addr = htonl(getenv("HELPER_ANY") ? INADDR_ANY : INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 128) != 0) {
        perror("bind/listen");
        return 1;
    }
    fprintf(stderr, "helper %d listening on %d\n", (int)getpid(), port);
    int workers = getenv("HELPER_WORKERS") ? atoi(getenv("HELPER_WORKERS")) : 0;
    for (int i = 0; i < workers; i++) {
        if (fork() == 0) {
            workers = 0; /* a worker serves */
            break;
        }
    }
    const char *pidfile = getenv("HELPER_PIDFILE");
    if (workers > 0) {
        if (pidfile) {
            FILE *f = fopen(pidfile, "w");
            if (f) { fprintf(f, "%d\n", (int)getpid()); fclose(f); }
        }
        for (;;) pause(); /* the master serves nothing */
    }
    if (getenv("HELPER_SPIN")) fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK);
    char cwd[512];
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "?");
    const char *greeting = getenv("GREETING");
    for (;;) {
        int c = accept(s, 0, 0);
        if (c < 0) continue;
        fcntl(c, F_SETFL, fcntl(c, F_GETFL) & ~O_NONBLOCK);
        char buf[4096];
        ssize_t n = read(c, buf, sizeof buf);
        (void)n;
        char body[1024];
        int bl = snprintf(body, sizeof body, "ok pid=%d cwd=%s greeting=%s\n", (int)getpid(), cwd,
                          greeting ? greeting : "");
        char out[1200];
        int ol = snprintf(out, sizeof out,
                          "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                          bl, body);
        ssize_t w = write(c, out, ol);
        (void)w;
        close(c);
    }
}
