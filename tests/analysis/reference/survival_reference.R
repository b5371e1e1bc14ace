# Reference values for nettrial.analysis.survival, computed by R's `survival` package.
#
# Reads lung.csv (lifelines' load_lung(), status already 0/1) and ties.csv (make_ties.py: integer
# times 1..20, heavy ties) from this folder, plus three tiny inline data sets that exercise the
# median's edge cases, and writes survival_reference.json (or the path given as first argument).
# Every method is set explicitly: conf.type = "log-log" for Kaplan-Meier, ties = "efron" for Cox.
#
# Usage: Rscript tests/analysis/reference/survival_reference.R [OUT.json]
# Needs only base R and the `survival` package (Debian: r-base-core, r-cran-survival).

suppressPackageStartupMessages(library(survival))

script_arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
here <- if (length(script_arg)) dirname(normalizePath(sub("^--file=", "", script_arg))) else "."
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[1] else file.path(here, "survival_reference.json")

# --- a small JSON writer (jsonlite is not a dependency): %.17g round-trips every double ----------

json_value <- function(x, indent = "") {
  inner <- paste0(indent, "  ")
  if (is.list(x)) {
    if (!length(x)) return(if (is.null(names(x))) "[]" else "{}")
    items <- vapply(x, json_value, "", indent = inner)
    if (is.null(names(x))) {
      return(paste0("[\n", inner, paste(items, collapse = paste0(",\n", inner)), "\n", indent, "]"))
    }
    keys <- paste0("\"", names(x), "\": ")
    return(paste0("{\n", inner, paste0(keys, items, collapse = paste0(",\n", inner)), "\n", indent, "}"))
  }
  scalar <- function(v) {
    if (is.character(v)) return(paste0("\"", v, "\""))
    if (is.na(v) || !is.finite(v)) return("null")
    if (is.logical(v)) return(if (v) "true" else "false")
    sprintf("%.17g", v)
  }
  if (length(x) == 1 && is.null(attr(x, "array"))) return(scalar(x))
  paste0("[", paste(vapply(x, scalar, ""), collapse = ", "), "]")
}
as_array <- function(x) structure(unname(x), array = TRUE)  # a JSON array even when of length 1

# --- the statistics, each with its method named ------------------------------------------------

km_at <- function(time, status, times) {
  fit <- survfit(Surv(time, status) ~ 1, conf.type = "log-log", conf.int = 0.95)
  s <- summary(fit, times = times, extend = FALSE)
  list(
    conf_type = "log-log", times = as_array(s$time), survival = as_array(s$surv),
    lower = as_array(s$lower), upper = as_array(s$upper), n_risk = as_array(s$n.risk)
  )
}

median_of <- function(time, status) {
  fit <- survfit(Surv(time, status) ~ 1, conf.type = "log-log", conf.int = 0.95)
  q <- quantile(fit, probs = 0.5)  # quantile.survfit: what print.survfit shows
  list(estimate = unname(q$quantile), lower = unname(q$lower), upper = unname(q$upper))
}

logrank_of <- function(time, status, group, name) {
  test <- survdiff(Surv(time, status) ~ group)
  df <- length(test$n) - 1
  list(group = name, statistic = test$chisq, df = df, p = pchisq(test$chisq, df, lower.tail = FALSE))
}

cox_of <- function(formula, data, terms) {
  fit <- coxph(formula, data = data, ties = "efron")
  s <- summary(fit, conf.int = 0.95)
  stopifnot(identical(names(coef(fit)), names(terms)))
  list(
    ties = "efron", n = fit$n, events = fit$nevent, terms = as_array(unname(terms)),
    coef = as_array(s$coefficients[, "coef"]), se = as_array(s$coefficients[, "se(coef)"]),
    hr = as_array(s$conf.int[, "exp(coef)"]), hr_lower = as_array(s$conf.int[, "lower .95"]),
    hr_upper = as_array(s$conf.int[, "upper .95"]), p = as_array(s$coefficients[, "Pr(>|z|)"])
  )
}

# --- lung: lifelines' copy of R's lung, status converted there from 1/2 to 0/1 ------------------

lung_csv <- read.csv(file.path(here, "lung.csv"))
stopifnot(
  setequal(unique(lung_csv$status), c(0, 1)),
  all(lung_csv$time == survival::lung$time),
  all(lung_csv$status == survival::lung$status - 1)  # R's lung: 1 = censored, 2 = dead
)
lung_cc <- lung_csv[complete.cases(lung_csv[, c("age", "sex", "ph.ecog")]), ]  # drops 1 (ph.ecog)
lung <- list(
  n = nrow(lung_csv), events = sum(lung_csv$status),
  km = km_at(lung_csv$time, lung_csv$status, c(0, 30, 100, 180, 365, 500, 730, 1000)),
  median = median_of(lung_csv$time, lung_csv$status),
  follow_up = median_of(lung_csv$time, 1 - lung_csv$status),  # reverse Kaplan-Meier
  logrank = logrank_of(lung_csv$time, lung_csv$status, lung_csv$sex, "sex"),
  cox = cox_of(
    Surv(time, status) ~ age + sex + ph.ecog, lung_cc,
    c(age = "age", sex = "sex", ph.ecog = "ph.ecog")
  )
)

# --- ties: a categorical site (treatment contrasts against the first level, C-locale sort) -----

ties_csv <- read.csv(file.path(here, "ties.csv"))
stopifnot(setequal(unique(ties_csv$status), c(0, 1)))
levels_sorted <- sort(unique(ties_csv$site), method = "radix")  # byte order, as Python's sorted()
ties_csv$site <- factor(ties_csv$site, levels = levels_sorted)
site_terms <- setNames(paste0("site[", levels_sorted[-1], "]"), paste0("site", levels_sorted[-1]))
ties <- list(
  n = nrow(ties_csv), events = sum(ties_csv$status),
  km = km_at(ties_csv$time, ties_csv$status, c(0, 1, 2.5, 3, 5, 8, 12, 19.5, 20)),
  median = median_of(ties_csv$time, ties_csv$status),
  follow_up = median_of(ties_csv$time, 1 - ties_csv$status),
  logrank = logrank_of(ties_csv$time, ties_csv$status, ties_csv$site, "site"),
  cox = cox_of(Surv(time, status) ~ site + ki67, ties_csv, c(site_terms, ki67 = "ki67"))
)

# --- tiny data sets for the median's edge cases (the data travel in the JSON) -----------------

tiny <- function(time, status, why) {
  c(list(why = why, time = as_array(time), status = as_array(status)), median_of(time, status))
}
edge_cases <- list(
  plateau = tiny(1:6, rep(1, 6), "S(t) = 0.5 exactly on [3, 4): R takes the midpoint 3.5"),
  last_point = tiny(1:4, c(1, 1, 0, 0), "S(t) ends at exactly 0.5: midpoint of 2 and the last time"),
  falls_to_zero = tiny(
    c(1, 2, 2, 3, 4), c(1, 1, 0, 1, 1), "S(4) = 0: the interval is NA there, so no upper limit"
  )
)

reference <- list(
  software = list(R = R.version.string, survival = as.character(packageVersion("survival"))),
  lung = lung, ties = ties, edge_cases = edge_cases
)
writeLines(json_value(reference), out)
