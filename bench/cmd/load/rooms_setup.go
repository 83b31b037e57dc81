package main

import (
	"context"
	"fmt"
	"sync"
)

// layout creates rooms of size members each for n users of kind through the
// admin API and returns one connection spec per user, user i in room i/size.
func (b *bench) layout(ctx context.Context, kind string, n, size int, batch bool) ([]spec, []string, error) {
	size = max(size, 1)
	nrooms := (n + size - 1) / size
	specs := make([]spec, n)
	convs := make([]string, nrooms)
	for r := range nrooms {
		convs[r] = fmt.Sprintf("%s-%s-r%d", b.prefix, kind, r)
	}
	for i := range specs {
		specs[i] = spec{user: fmt.Sprintf("%s-%s-u%d", b.prefix, kind, i), conv: convs[i/size], batch: batch}
	}
	jobs := make(chan int)
	errs := make(chan error, nrooms)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for r := range jobs {
				users := make([]string, 0, size)
				for i := r * size; i < min((r+1)*size, n); i++ {
					users = append(users, specs[i].user)
				}
				if err := b.srv.createConversation(ctx, convs[r], users); err != nil {
					errs <- err
				}
			}
		})
	}
	for r := range nrooms {
		jobs <- r
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, nil, fmt.Errorf("create rooms: %w", err)
	}
	return specs, convs, nil
}
