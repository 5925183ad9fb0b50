from django.apps import AppConfig


class RankingConfig(AppConfig):
    name = "ranking"

    def ready(self) -> None:
        import atexit

        from core import health, metrics
        from customers import runtime_sync
        from ranking import health as ranking_health
        from ranking import metrics as ranking_metrics
        from ranking.learning.rank_log import flush_quietly

        # The rank log's buffer is flushed from the runtime-sync thread and once more at exit.
        runtime_sync.run_periodically(flush_quietly)
        atexit.register(flush_quietly)
        health.register_check("signal_store", ranking_health.signal_store_answers)
        health.register_data_check("signal_data", ranking_health.signal_data_lost)
        metrics.register_scrape_collector(ranking_metrics.SignalAgeCollector)
        metrics.register_scrape_collector(ranking_metrics.ExperimentCollector)
