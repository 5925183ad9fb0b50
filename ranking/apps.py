from django.apps import AppConfig


class RankingConfig(AppConfig):
    name = "ranking"

    def ready(self) -> None:
        import atexit

        from customers import runtime_sync
        from ranking.learning.rank_log import flush_quietly

        # The rank log's buffer is flushed from the runtime-sync thread and once more at exit.
        runtime_sync.run_periodically(flush_quietly)
        atexit.register(flush_quietly)
