module example.com/litestream-example

go 1.19

require github.com/mattn/go-sqlite3 v1.14.16

// Debian's golang-github-mattn-go-sqlite3-dev (linked against the system's libsqlite3): builds
// offline. Elsewhere delete this line and let `go mod tidy` fetch the module.
replace github.com/mattn/go-sqlite3 => /usr/share/gocode/src/github.com/mattn/go-sqlite3
