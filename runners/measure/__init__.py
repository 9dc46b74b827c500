"""How one thing is measured: time (`meters.measure_time`), peak memory (`meters`), one sweep
case's forward or forward+backward call (`cases`), the CPU allocator a process runs on
(`allocator`) and the predictions that skip a case before it runs (`loop`)."""
