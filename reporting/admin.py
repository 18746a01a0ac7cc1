from django.contrib import admin

from .models import Term, TermBreak


class TermBreakInline(admin.TabularInline):
    model = TermBreak
    extra = 0


@admin.register(Term)
class TermAdmin(admin.ModelAdmin):
    list_display = ["name", "first_day", "last_day"]
    date_hierarchy = "first_day"
    inlines = [TermBreakInline]
