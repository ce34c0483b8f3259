module example.invalid/kepmlog/bench/go

go 1.22

require example.invalid/kepmlog/bindings/go v0.0.0

replace example.invalid/kepmlog/bindings/go => ../../bindings/go
