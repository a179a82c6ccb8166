//! CloudWatch: the RDS and App Runner metrics the health cards read, and the log search.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{AwsCloud, explain};
use crate::cloud::{AppMetrics, Capacity, CloudError, CloudResult, CloudWatch, DayMetrics, LogEvent, LogQuery, Logs};

impl AwsCloud {
    /// The latest 5-minute statistic of one of the instance's RDS metrics in the last hour.
    async fn rds_metric(&self, metric: &str, statistic: aws_sdk_cloudwatch::types::Statistic) -> CloudResult<f64> {
        use aws_sdk_cloudwatch::primitives::DateTime as AwsTime;
        use aws_sdk_cloudwatch::types::{Dimension, Statistic};
        let now = Utc::now();
        let out = self
            .cloudwatch
            .get_metric_statistics()
            .namespace("AWS/RDS")
            .metric_name(metric)
            .dimensions(Dimension::builder().name("DBInstanceIdentifier").value(&self.db_instance).build())
            .start_time(AwsTime::from_secs((now - chrono::Duration::hours(1)).timestamp()))
            .end_time(AwsTime::from_secs(now.timestamp()))
            .period(300)
            .statistics(statistic.clone())
            .send()
            .await
            .map_err(|e| explain("CloudWatch", e))?;
        let value = |p: &aws_sdk_cloudwatch::types::Datapoint| match statistic {
            Statistic::Minimum => p.minimum(),
            Statistic::Maximum => p.maximum(),
            _ => p.average(),
        };
        out.datapoints()
            .iter()
            .filter_map(|p| Some((p.timestamp()?.secs(), value(p)?)))
            .max_by_key(|(at, _)| *at)
            .map(|(_, v)| v)
            .ok_or_else(|| CloudError::Unavailable(format!("CloudWatch has no {metric} datapoint in the last hour")))
    }
}

#[async_trait]
impl CloudWatch for AwsCloud {
    async fn free_storage_bytes(&self) -> CloudResult<f64> {
        self.rds_metric("FreeStorageSpace", aws_sdk_cloudwatch::types::Statistic::Minimum).await
    }

    async fn cpu_percent(&self) -> CloudResult<f64> {
        self.rds_metric("CPUUtilization", aws_sdk_cloudwatch::types::Statistic::Average).await
    }

    async fn app_metrics(&self) -> CloudResult<Option<AppMetrics>> {
        let (requests, errors, latency) = tokio::join!(
            self.app_runner_metric("Requests"),
            self.app_runner_metric("5xxStatusResponses"),
            self.app_runner_metric("RequestLatency"),
        );
        let (requests, errors, latency) = (requests?, errors?, latency?);
        if requests.is_empty() {
            return Ok(None);
        }
        let sum = |points: &[aws_sdk_cloudwatch::types::Datapoint]| points.iter().filter_map(|p| p.sum()).sum::<f64>();
        let (latency_ms, latency_is_p99) = worst_latency(&latency);
        Ok(Some(AppMetrics { requests: sum(&requests), errors_5xx: sum(&errors), latency_ms, latency_is_p99 }))
    }

    async fn capacity(&self) -> CloudResult<Option<Capacity>> {
        let now = Utc::now();
        let start = now - chrono::Duration::minutes(crate::cloud::APP_METRICS_WINDOW_MINUTES);
        let (instances, cpu, memory) = tokio::join!(
            self.app_runner_series("ActiveInstances", start, now, 300),
            self.app_runner_series("CPUUtilization", start, now, 300),
            self.app_runner_series("MemoryUtilization", start, now, 300),
        );
        let latest = |points: Vec<aws_sdk_cloudwatch::types::Datapoint>| {
            points.into_iter().filter(|p| p.timestamp().is_some()).max_by_key(|p| p.timestamp().map(|t| t.secs()))
        };
        let Some(instances) = latest(instances?) else { return Ok(None) };
        Ok(Some(Capacity {
            active_instances: instances.maximum().or(instances.average()).unwrap_or_default(),
            cpu_percent: latest(cpu?).and_then(|p| p.average()),
            memory_percent: latest(memory?).and_then(|p| p.average()),
        }))
    }

    async fn daily_app_metrics(&self, from: DateTime<Utc>, days: u32) -> CloudResult<Vec<DayMetrics>> {
        let end = from + chrono::Duration::days(i64::from(days));
        let (requests, errors, latency) = tokio::join!(
            self.app_runner_series("Requests", from, end, 86_400),
            self.app_runner_series("5xxStatusResponses", from, end, 86_400),
            self.app_runner_series("RequestLatency", from, end, 86_400),
        );
        let (requests, errors, latency) = (requests?, errors?, latency?);
        let day_of = |p: &aws_sdk_cloudwatch::types::Datapoint| {
            p.timestamp().and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), 0)).map(|t| t.date_naive())
        };
        let mut out: Vec<DayMetrics> = requests
            .iter()
            .filter_map(|p| {
                let day = day_of(p)?;
                let errors_5xx = errors.iter().filter(|e| day_of(e) == Some(day)).filter_map(|e| e.sum()).sum();
                let p99_ms = latency
                    .iter()
                    .filter(|l| day_of(l) == Some(day))
                    .find_map(|l| l.extended_statistics()?.get("p99").copied());
                Some(DayMetrics { day, requests: p.sum().unwrap_or_default(), errors_5xx, p99_ms })
            })
            .collect();
        out.sort_by_key(|d| d.day);
        Ok(out)
    }
}

/// The worst 5-minute p99 latency, or the worst average where no percentile came back.
pub fn worst_latency(points: &[aws_sdk_cloudwatch::types::Datapoint]) -> (f64, bool) {
    let max = |values: Vec<f64>| values.into_iter().fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    let p99 = max(points.iter().filter_map(|p| p.extended_statistics()?.get("p99").copied()).collect());
    match p99 {
        Some(v) => (v, true),
        None => (max(points.iter().filter_map(|p| p.average()).collect()).unwrap_or_default(), false),
    }
}

impl AwsCloud {
    /// 5-minute datapoints of one of the service's App Runner metrics over the window.
    async fn app_runner_metric(&self, metric: &str) -> CloudResult<Vec<aws_sdk_cloudwatch::types::Datapoint>> {
        let now = Utc::now();
        let start = now - chrono::Duration::minutes(crate::cloud::APP_METRICS_WINDOW_MINUTES);
        self.app_runner_series(metric, start, now, 300).await
    }

    /// Datapoints of one of the service's App Runner metrics from `start` to `now`, one per
    /// `period` seconds: sums, or the average and p99 for latency.
    async fn app_runner_series(
        &self,
        metric: &str,
        start: DateTime<Utc>,
        now: DateTime<Utc>,
        period: i32,
    ) -> CloudResult<Vec<aws_sdk_cloudwatch::types::Datapoint>> {
        use aws_sdk_cloudwatch::primitives::DateTime as AwsTime;
        use aws_sdk_cloudwatch::types::{Dimension, Statistic};
        let mut parts = self.service_arn.rsplit('/');
        let (id, name) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let mut request = self
            .cloudwatch
            .get_metric_statistics()
            .namespace("AWS/AppRunner")
            .metric_name(metric)
            .dimensions(Dimension::builder().name("ServiceName").value(name).build())
            .dimensions(Dimension::builder().name("ServiceID").value(id).build())
            .start_time(AwsTime::from_secs(start.timestamp()))
            .end_time(AwsTime::from_secs(now.timestamp()))
            .period(period);
        request = match metric {
            "RequestLatency" => request.statistics(Statistic::Average).extended_statistics("p99"),
            "ActiveInstances" => request.statistics(Statistic::Maximum).statistics(Statistic::Average),
            "CPUUtilization" | "MemoryUtilization" => request.statistics(Statistic::Average),
            _ => request.statistics(Statistic::Sum),
        };
        let out = request.send().await.map_err(|e| explain("CloudWatch", e))?;
        Ok(out.datapoints().to_vec())
    }
}

#[async_trait]
impl Logs for AwsCloud {
    async fn filter_events(&self, query: &LogQuery) -> CloudResult<Vec<LogEvent>> {
        // FilterLogEvents pages oldest first: read up to a bound, keep the newest.
        let mut pages = self
            .logs
            .filter_log_events()
            .log_group_name(&self.log_group)
            .filter_pattern(&query.pattern)
            .start_time(query.start.timestamp_millis())
            .end_time(query.end.timestamp_millis())
            .into_paginator()
            .send();
        let mut events = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| explain("CloudWatch Logs", e))?;
            for e in page.events() {
                if let (Some(ms), Some(message)) = (e.timestamp(), e.message()) {
                    events.push(LogEvent {
                        at: DateTime::from_timestamp_millis(ms).unwrap_or_default(),
                        message: message.to_owned(),
                    });
                }
            }
            if events.len() >= 5_000 {
                break;
            }
        }
        events.sort_by_key(|e| std::cmp::Reverse(e.at));
        events.truncate(query.limit);
        Ok(events)
    }
}
