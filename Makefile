# `make demo` / `make test` are the same as `./run demo` / `./run test` (which need no make).
.PHONY: demo test install
demo:
	./run demo
test:
	./run test
install:
	./install.sh
