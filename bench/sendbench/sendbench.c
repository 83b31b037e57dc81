// sendbench: the CPU one small send to a loopback TCP socket costs the
// sender, written with write(2) one socket at a time or submitted through
// io_uring (IORING_OP_SEND, MSG_DONTWAIT) all sockets of a round at once.
// A child pinned to core 1 drains every socket with epoll; the sender is
// pinned to core 0; a round writes each of N sockets once, then rests 20 ms.
//
//   cc -O2 -o /tmp/sendbench bench/sendbench/sendbench.c
//   /tmp/sendbench SOCKETS BYTES ROUNDS MODE   # MODE 0: write(2), 1: io_uring
//   e.g. /tmp/sendbench 1000 7500 200 0; /tmp/sendbench 1000 7500 200 1
//
// It prints the sender's CPU (user + system, getrusage) per send.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <linux/io_uring.h>
#include <stdatomic.h>
#include <time.h>

static void pin(int c){cpu_set_t s;CPU_ZERO(&s);CPU_SET(c,&s);sched_setaffinity(0,sizeof s,&s);}
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec/1e9;}
static double cpu(){struct rusage r;getrusage(RUSAGE_SELF,&r);return r.ru_utime.tv_sec+r.ru_utime.tv_usec/1e6+r.ru_stime.tv_sec+r.ru_stime.tv_usec/1e6;}

int main(int argc,char**argv){
  int N=atoi(argv[1]), SZ=atoi(argv[2]), ROUNDS=atoi(argv[3]), mode=atoi(argv[4]); // mode 0 write, 1 io_uring
  int ls=socket(AF_INET,SOCK_STREAM,0); int one=1; setsockopt(ls,SOL_SOCKET,SO_REUSEADDR,&one,4);
  struct sockaddr_in a={.sin_family=AF_INET,.sin_addr.s_addr=htonl(0x7f000001)}; bind(ls,(void*)&a,sizeof a); listen(ls,4096);
  socklen_t al=sizeof a; getsockname(ls,(void*)&a,&al);
  pid_t ch=fork();
  if(ch==0){ pin(1); int ep=epoll_create1(0); int got=0; char buf[65536];
    struct epoll_event ev; ev.events=EPOLLIN; ev.data.fd=ls; epoll_ctl(ep,EPOLL_CTL_ADD,ls,&ev);
    struct epoll_event evs[256]; long total=0;
    for(;;){int n=epoll_wait(ep,evs,256,5000); if(n<=0)break;
      for(int i=0;i<n;i++){int fd=evs[i].data.fd; if(fd==ls){int c=accept4(ls,0,0,SOCK_NONBLOCK); ev.events=EPOLLIN; ev.data.fd=c; epoll_ctl(ep,EPOLL_CTL_ADD,c,&ev); got++; continue;}
        for(;;){ssize_t r=read(fd,buf,sizeof buf); if(r>0){total+=r; continue;} if(r==0){close(fd);} break;}}}
    _exit(0);}
  pin(0);
  int *fds=malloc(N*sizeof(int));
  for(int i=0;i<N;i++){fds[i]=socket(AF_INET,SOCK_STREAM,0); setsockopt(fds[i],IPPROTO_TCP,TCP_NODELAY,&one,4); if(connect(fds[i],(void*)&a,sizeof a)){perror("connect");return 1;} fcntl(fds[i],F_SETFL,O_NONBLOCK);}
  usleep(300000);
  char *buf=malloc(SZ); memset(buf,'x',SZ);
  struct io_uring_params p; memset(&p,0,sizeof p);
  int ring=-1; unsigned *sq_tail=NULL,*sq_mask=NULL,*sq_array=NULL,*cq_head=NULL,*cq_tail=NULL,*cq_mask=NULL; struct io_uring_sqe*sqes=NULL; struct io_uring_cqe*cqes=NULL;
  if(mode==1){ ring=syscall(__NR_io_uring_setup,4096,&p); if(ring<0){perror("setup");return 1;}
    size_t sqsz=p.sq_off.array+p.sq_entries*4, cqsz=p.cq_off.cqes+p.cq_entries*sizeof(struct io_uring_cqe);
    char*sq=mmap(0,sqsz,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_POPULATE,ring,IORING_OFF_SQ_RING);
    char*cq=(p.features&IORING_FEAT_SINGLE_MMAP)?sq:mmap(0,cqsz,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_POPULATE,ring,IORING_OFF_CQ_RING);
    if(p.features&IORING_FEAT_SINGLE_MMAP && cqsz>sqsz){munmap(sq,sqsz); sq=cq=mmap(0,cqsz,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_POPULATE,ring,IORING_OFF_SQ_RING);}
    sqes=mmap(0,p.sq_entries*sizeof(struct io_uring_sqe),PROT_READ|PROT_WRITE,MAP_SHARED|MAP_POPULATE,ring,IORING_OFF_SQES);
    sq_tail=(void*)(sq+p.sq_off.tail); sq_mask=(void*)(sq+p.sq_off.ring_mask); sq_array=(void*)(sq+p.sq_off.array);
    cq_head=(void*)(cq+p.cq_off.head); cq_tail=(void*)(cq+p.cq_off.tail); cq_mask=(void*)(cq+p.cq_off.ring_mask); cqes=(void*)(cq+p.cq_off.cqes);
  }
  double c0=cpu(), t0=now(); long writes=0, errs=0;
  for(int r=0;r<ROUNDS;r++){
    if(mode==0){ for(int i=0;i<N;i++){ if(write(fds[i],buf,SZ)<0)errs++; writes++; } }
    else { unsigned tail=*sq_tail; for(int i=0;i<N;i++){unsigned idx=tail&*sq_mask; struct io_uring_sqe*s=&sqes[idx]; memset(s,0,sizeof *s); s->opcode=IORING_OP_SEND; s->fd=fds[i]; s->addr=(unsigned long)buf; s->len=SZ; s->msg_flags=MSG_DONTWAIT; s->user_data=i; sq_array[idx]=idx; tail++;}
      atomic_store_explicit((_Atomic unsigned*)sq_tail,tail,memory_order_release);
      int ret=syscall(__NR_io_uring_enter,ring,N,N,IORING_ENTER_GETEVENTS,NULL,0); if(ret<0){perror("enter");return 1;}
      unsigned h=*cq_head, t=atomic_load_explicit((_Atomic unsigned*)cq_tail,memory_order_acquire); while(h!=t){ if(cqes[h&*cq_mask].res<0)errs++; h++; writes++;} atomic_store_explicit((_Atomic unsigned*)cq_head,h,memory_order_release);}
    usleep(20000);
  }
  double c1=cpu(), t1=now();
  printf("mode %d N %d SZ %d writes %ld errs %ld cpu %.3fs -> %.2f us/write wall %.2fs\n",mode,N,SZ,writes,errs,c1-c0,(c1-c0)/writes*1e6,t1-t0);
  for(int i=0;i<N;i++)close(fds[i]);
  close(ls); kill(ch,9); waitpid(ch,0,0); return 0;}
