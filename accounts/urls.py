from allauth.account import views as allauth_views
from django.urls import path

from . import views

app_name = "accounts"

# The login page is allauth's (it runs the two-factor step), under the name the rest of
# ResQ uses; accounts.allauth_urls gives allauth the names it reverses itself.
urlpatterns = [
    path("", views.overview, name="overview"),
    path("login/", allauth_views.login, name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("stay/", views.stay_logged_in, name="stay"),
]
